"""Image-to-image from an upload; uses of prompt templates and downloads are counted."""

from __future__ import annotations

import io
import uuid

import httpx
import nats
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from picture.devstack.waiting import eventually
from tests.integration.conftest import wait_terminal


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 90, 40)).save(buffer, "PNG")
    return buffer.getvalue()


async def _upload(api: httpx.AsyncClient) -> str:
    response = await api.post("/v1/uploads", files={"file": ("sketch.png", _png(640, 480), "image/png")})
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


async def test_an_upload_is_the_source_of_an_image_to_image_generation(
    api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    source = await _upload(api)
    response = await api.post(
        "/v1/generations",
        json={
            "model": "flux-dev",
            "prompt": "the sketch as an oil painting",
            "source_image_id": source,
            "strength": 0.7,
        },
    )
    assert response.status_code == 202, response.text
    done = await wait_terminal(api, response.json()["id"])
    assert done["status"] == "completed", done
    async with db.connect() as conn:
        sent = (
            await conn.execute(
                text("SELECT input FROM adapter.predictions WHERE generation_id = :id"), {"id": done["id"]}
            )
        ).scalar_one()
    # flux-dev: the source as `image`, prompt_strength = 1 - strength (the old product's rule)
    assert sent["prompt_strength"] == 0.3
    assert "/objects/" in sent["image"] and "sig=" in sent["image"]
    # the URL the model got really serves the source's bytes
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(sent["image"])
    assert fetched.status_code == 200
    assert Image.open(io.BytesIO(fetched.content)).size == (640, 480)


async def test_image_to_image_refusals_name_the_field(stack: Stack, api: httpx.AsyncClient) -> None:
    source = await _upload(api)
    cases = [
        ({"model": "flux-schnell", "prompt": "x", "source_image_id": source}, "source_image_id"),
        ({"model": "flux-dev", "prompt": "x", "strength": 0.5}, "strength"),
        ({"model": "flux-dev", "prompt": "x", "source_image_id": str(uuid.uuid4())}, "source_image_id"),
        ({"model": "flux-dev", "prompt": "x", "source_image_id": source, "strength": 1.5}, "body.strength"),
    ]
    for body, field in cases:
        response = await api.post("/v1/generations", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field
    # another user's image is "no such image of yours", never a hint that it exists
    other = mint_token(stack.secrets["PICTURE_JWT_SECRET"])
    response = await api.post(
        "/v1/generations",
        json={"model": "flux-dev", "prompt": "x", "source_image_id": source},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "source_image_id"


async def test_a_generation_from_a_template_counts_its_use_once(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/prompt-templates", json={"name": "lighthouse", "prompt": "a lighthouse"})
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    response = await api.post(
        "/v1/generations",
        json={"model": "flux-schnell", "prompt": "a lighthouse", "prompt_template_id": template_id},
    )
    assert response.status_code == 202, response.text

    async def use_count() -> int:
        count: int = (await api.get(f"/v1/prompt-templates/{template_id}")).json()["use_count"]
        return count

    assert await eventually(use_count, timeout=20, what="the use counted") == 1


async def test_whole_downloads_are_counted_for_popularity(
    api: httpx.AsyncClient, db: AsyncEngine, stack: Stack
) -> None:
    image_id = await _upload(api)
    first = await api.get(f"/v1/images/{image_id}/content")
    assert first.status_code == 200
    revalidated = await api.get(
        f"/v1/images/{image_id}/content", headers={"If-None-Match": first.headers["etag"]}
    )
    assert revalidated.status_code == 304
    ranged = await api.get(f"/v1/images/{image_id}/content", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert (await api.get(f"/v1/images/{image_id}/thumbnail")).status_code == 200
    assert (await api.get(f"/v1/images/{image_id}/content")).status_code == 200
    # The gateway published a command per whole download before answering: once the catalog
    # has handled every command in the stream, any other count would have arrived.
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    try:
        js = nc.jetstream()

        async def catalog_caught_up() -> bool:
            info = await js.consumer_info(c.CMD_STREAM.name, "catalog-commands")
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(catalog_caught_up, timeout=20, what="the catalog handling every command")
    finally:
        await nc.close()
    async with db.connect() as conn:
        final = (
            await conn.execute(
                text("SELECT download_count, popularity FROM catalog.images WHERE id = :id"), {"id": image_id}
            )
        ).one()
    assert (final.download_count, final.popularity) == (2, 2)
