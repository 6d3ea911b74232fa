"""One generation through all five services, over real NATS JetStream and PostgreSQL."""

from __future__ import annotations

import io
import uuid

import httpx
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.conftest import wait_terminal


async def test_a_generation_completes_with_a_stored_webp(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    response = await api.post(
        "/v1/generations",
        json={
            "model": "flux-schnell",
            "prompt": "a lighthouse at dusk",
            "width": 1344,
            "height": 768,
            "seed": 7,
        },
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    # The gateway accepts it (durable, charged); the orchestrator queues it right after.
    assert accepted["status"] == "pending"
    assert response.headers["location"].endswith(f"/v1/generations/{accepted['id']}")

    done = await wait_terminal(api, accepted["id"])
    assert done["status"] == "completed", done
    assert [h["status"] for h in done["history"]] == [
        "pending",
        "queued",
        "processing",
        "downloading",
        "completed",
    ]
    assert done["timings"]["total_time_ms"] >= done["timings"]["processing_time_ms"] > 0
    image = done["image"]
    assert (image["width"], image["height"], image["format"]) == (1344, 768, "webp")

    content = await api.get(image["url"])
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/webp"
    assert len(content.content) == image["file_size"]
    decoded = Image.open(io.BytesIO(content.content))
    assert decoded.format == "WEBP"
    assert decoded.size == (1344, 768)

    async with db.connect() as conn:
        generation = (
            await conn.execute(
                text(
                    "SELECT status, user_id, image_id, cost_usd FROM orchestrator.generations WHERE id = :id"
                ),
                {"id": accepted["id"]},
            )
        ).one()
        assert generation.status == "completed"
        assert generation.user_id == user_id
        assert str(generation.image_id) == image["id"]
        assert generation.cost_usd == 0.003
        history = (
            (
                await conn.execute(
                    text(
                        "SELECT to_status FROM orchestrator.status_history "
                        "WHERE generation_id = :id ORDER BY id"
                    ),
                    {"id": accepted["id"]},
                )
            )
            .scalars()
            .all()
        )
        assert history == ["pending", "queued", "processing", "downloading", "completed"]
        performance = (
            await conn.execute(
                text(
                    "SELECT status, total_time_ms FROM orchestrator.generation_performance "
                    "WHERE generation_id = :id"
                ),
                {"id": accepted["id"]},
            )
        ).one()
        assert performance.status == "completed" and performance.total_time_ms > 0
        catalog_image = (
            await conn.execute(
                text(
                    "SELECT user_id, width, height, format, file_size, prompt, seed "
                    "FROM catalog.images WHERE id = :id"
                ),
                {"id": image["id"]},
            )
        ).one()
        assert catalog_image.user_id == user_id
        assert (catalog_image.width, catalog_image.height, catalog_image.format) == (1344, 768, "webp")
        assert catalog_image.file_size == image["file_size"]
        assert (catalog_image.prompt, catalog_image.seed) == ("a lighthouse at dusk", 7)
        objects = (
            await conn.execute(
                text("SELECT count(*) FROM media.stored_objects WHERE generation_id = :id"),
                {"id": accepted["id"]},
            )
        ).scalar_one()
        assert objects == 2  # the image and its thumbnail


async def test_a_failed_prediction_ends_failed_with_a_readable_message(
    api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    response = await api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": "[sim:fail] a broken dream"}
    )
    assert response.status_code == 202, response.text
    done = await wait_terminal(api, response.json()["id"])
    assert done["status"] == "failed"
    assert done["error_message"] and "failure" in done["error_message"].lower()
    assert done["image"] is None
    async with db.connect() as conn:
        errors = (
            await conn.execute(
                text(
                    "SELECT error_type, error_kind, recovery_action FROM orchestrator.generation_errors "
                    "WHERE generation_id = :id"
                ),
                {"id": done["id"]},
            )
        ).all()
    assert [(e.error_type, e.error_kind, e.recovery_action) for e in errors] == [
        ("prediction_failed", "permanent", "fail")
    ]


async def test_another_users_generation_is_not_found(api: httpx.AsyncClient, stack: object) -> None:
    response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": "mine"})
    assert response.status_code == 202
    from picture.devstack.tokens import mint_token

    other = mint_token(stack.secrets["PICTURE_JWT_SECRET"])  # type: ignore[attr-defined]
    answer = await api.get(
        f"/v1/generations/{response.json()['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
