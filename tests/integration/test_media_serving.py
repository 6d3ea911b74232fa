"""Image bytes through the gateway, uploads, SVG output: the real system.

Serving (filesystem backend: streamed by the gateway): ETag, Range (206), If-None-Match (304),
private images 404 for anyone but their owner, public images readable anonymously. SVG
generations are served sanitised with nosniff, a sandboxing CSP and attachment. Uploads are
processed, stored and recorded; a failing catalog step leaves neither object nor record.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import wait_terminal

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def _png(width: int, height: int, colour: tuple[int, int, int] = (20, 160, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def _generate(api: httpx.AsyncClient, model: str = "flux-schnell") -> dict[str, Any]:
    body = {"model": model, "prompt": f"a media test {uuid.uuid4()}"}
    response = await api.post("/v1/generations", json=body)
    assert response.status_code == 202, response.text
    result = await wait_terminal(api, response.json()["id"])
    assert result["status"] == "completed", result
    image: dict[str, Any] = result["image"]
    return image


@pytest.fixture
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
async def stranger(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


async def test_content_etag_range_304_and_access(
    api: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    stranger: httpx.AsyncClient,
    db: AsyncEngine,
) -> None:
    image = await _generate(api)
    path = f"/v1/images/{image['id']}/content"

    full = await api.get(path)
    assert full.status_code == 200, full.text
    assert full.headers["content-type"] == "image/webp"
    assert full.headers["x-content-type-options"] == "nosniff"
    assert full.headers["cache-control"].startswith("private")
    etag = full.headers["etag"]
    assert etag.startswith('"') and len(etag) == 66  # the quoted sha256
    assert int(full.headers["content-length"]) == len(full.content) == image["file_size"]
    assert Image.open(io.BytesIO(full.content)).size == (image["width"], image["height"])

    part = await api.get(path, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-109/{len(full.content)}"
    assert part.content == full.content[10:110]

    not_modified = await api.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert (await api.get(path, headers={"If-None-Match": '"other"'})).status_code == 200

    thumbnail = await api.get(f"/v1/images/{image['id']}/thumbnail")
    assert thumbnail.status_code == 200
    assert Image.open(io.BytesIO(thumbnail.content)).size == (256, 256)

    # Private: another user and an anonymous client see nothing, not even that it exists.
    for client in (stranger, anonymous):
        for variant in ("content", "thumbnail"):
            response = await client.get(f"/v1/images/{image['id']}/{variant}")
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == "application/problem+json"
    assert (await stranger.get(f"/v1/images/{uuid.uuid4()}/content")).status_code == 404

    # Public: readable without a token (and by anyone), cacheable publicly.
    async with db.begin() as conn:
        await conn.execute(
            text("UPDATE catalog.images SET is_public = true WHERE id = :id"), {"id": image["id"]}
        )
    public = await anonymous.get(path)
    assert public.status_code == 200
    assert public.content == full.content
    assert public.headers["cache-control"].startswith("public")
    assert (await stranger.get(f"/v1/images/{image['id']}/thumbnail")).status_code == 200


async def test_svg_generation_is_sanitised_and_served_as_an_attachment(api: httpx.AsyncClient) -> None:
    image = await _generate(api, "recraft-v3-svg")
    assert image["format"] == "svg"
    response = await api.get(f"/v1/images/{image['id']}/content")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == SVG_CSP
    assert response.headers["content-disposition"] == "attachment"
    assert response.content.lstrip().startswith(b"<?xml")
    assert b"<svg" in response.content and b"<script" not in response.content
    # The thumbnail is a raster drawn from the sanitised SVG.
    thumbnail = await api.get(f"/v1/images/{image['id']}/thumbnail")
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    assert "content-security-policy" not in thumbnail.headers
    assert Image.open(io.BytesIO(thumbnail.content)).size == (256, 256)


async def _object_rows(db: AsyncEngine, user_id: uuid.UUID) -> int:
    async with db.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM media.stored_objects WHERE owner_id = :u"), {"u": user_id}
            )
        ).scalar_one()
    return int(count)


def _files(stack: Stack, user_id: uuid.UUID) -> list[Path]:
    root = stack.var_dir / "objects" / str(user_id)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_upload_becomes_an_image_of_its_owner(
    stack: Stack, api: httpx.AsyncClient, stranger: httpx.AsyncClient, user_id: uuid.UUID, db: AsyncEngine
) -> None:
    files = {"file": ("my holiday.png", _png(900, 600), "image/png")}
    response = await api.post("/v1/uploads", files=files)
    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["width"], image["height"], image["format"]) == (900, 600, "webp")
    assert response.headers["location"] == f"/v1/images/{image['id']}"
    content = await api.get(f"/v1/images/{image['id']}/content")
    assert content.status_code == 200
    assert Image.open(io.BytesIO(content.content)).format == "WEBP"
    assert (await stranger.get(f"/v1/images/{image['id']}/content")).status_code == 404
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT user_id, prompt, content_key, blurhash FROM catalog.images WHERE id = :id"),
                {"id": image["id"]},
            )
        ).one()
    assert row.user_id == user_id
    assert row.prompt == "Uploaded: my holiday.png"
    assert row.content_key == f"{user_id}/uploads/{image['id']}/image.webp"
    assert row.blurhash is not None and len(row.blurhash) == 28
    assert sorted(p.name for p in _files(stack, user_id)) == ["image.webp", "thumb.webp"]

    # Deleting the image deletes its objects (catalog -> DELETE_OBJECTS -> media).
    assert (await api.delete(f"/v1/images/{image['id']}")).status_code == 204
    deadline = time.monotonic() + 20
    while _files(stack, user_id) or await _object_rows(db, user_id):
        assert time.monotonic() < deadline, "objects of a deleted image are still stored"
        await asyncio.sleep(0.2)
    assert (await api.get(f"/v1/images/{image['id']}/content")).status_code == 404


@pytest.mark.parametrize(
    ("filename", "body", "content_type", "status"),
    [
        ("anim.gif", b"GIF89a" + b"\0" * 64, "image/gif", 422),  # refused by the gateway
        ("fake.png", b"this is text, not a picture" * 10, "image/png", 422),  # refused by media
        ("icon.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png", 422),
        ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png", 413),
    ],
)
async def test_bad_uploads_are_refused_without_leftovers(
    stack: Stack,
    api: httpx.AsyncClient,
    user_id: uuid.UUID,
    filename: str,
    body: bytes,
    content_type: str,
    status: int,
) -> None:
    response = await api.post("/v1/uploads", files={"file": (filename, body, content_type)})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "file"
    assert _files(stack, user_id) == []


async def test_uploads_need_a_token_and_one_multipart_file(stack: Stack, api: httpx.AsyncClient) -> None:
    png = _png(64, 64)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as anonymous:
        unauthenticated = await anonymous.post("/v1/uploads", files={"file": ("a.png", png, "image/png")})
    assert unauthenticated.status_code == 401
    raw = await api.post("/v1/uploads", content=png, headers={"Content-Type": "image/png"})
    assert raw.status_code == 422 and raw.json()["field"] == "file"
    other_field = await api.post("/v1/uploads", files={"image": ("a.png", png, "image/png")})
    assert other_field.status_code == 422 and other_field.json()["field"] == "file"
    two = await api.post(
        "/v1/uploads", files=[("file", ("a.png", png, "image/png")), ("file", ("b.png", png, "image/png"))]
    )
    assert two.status_code == 422 and two.json()["field"] == "file"


async def test_upload_rolled_back_when_the_catalog_step_fails(
    stack: Stack, api: httpx.AsyncClient, user_id: uuid.UUID, db: AsyncEngine
) -> None:
    # Make the catalog's insert fail for this one file name (a constraint, dropped afterwards).
    name = f"refuse-{uuid.uuid4().hex[:8]}.png"
    constraint = f"media_test_{uuid.uuid4().hex[:8]}"
    async with db.begin() as conn:
        await conn.execute(
            text(f"ALTER TABLE catalog.images ADD CONSTRAINT {constraint} CHECK (filename <> '{name}')")
        )
    try:
        response = await api.post("/v1/uploads", files={"file": (name, _png(300, 200), "image/png")})
    finally:
        async with db.begin() as conn:
            await conn.execute(text(f"ALTER TABLE catalog.images DROP CONSTRAINT {constraint}"))
    assert response.status_code == 503, response.text
    assert _files(stack, user_id) == []
    objects = await _object_rows(db, user_id)
    async with db.connect() as conn:
        images = (
            await conn.execute(text("SELECT count(*) FROM catalog.images WHERE user_id = :u"), {"u": user_id})
        ).scalar_one()
    assert (objects, images) == (0, 0)
    # The same upload works once the catalog accepts it again.
    again = await api.post("/v1/uploads", files={"file": (name, _png(300, 200), "image/png")})
    assert again.status_code == 201, again.text
