"""``GET /v1/me/export`` and ``DELETE /v1/me`` through the real system: a user with
generations, an upload, tags, likes (given and received) and a template exports their data,
then deletes their account; then no row of theirs remains in
any service's schema and no file of theirs in storage, while what belongs to others stays
(another user's image keeps existing, its like count goes down)."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.devstack.stack import Stack
from tests.integration.conftest import wait_terminal

# Every table that holds a user's rows, with the column that names the user.
USER_ROWS = (
    ("gateway.generation_views", "user_id"),
    ("gateway.idempotency_keys", "user_id"),
    ("gateway.users", "user_id"),
    ("gateway.charges", "user_id"),
    ("gateway.rate_counters", "user_id"),
    ("gateway.request_rates", "user_id"),
    ("gateway.webhook_subscriptions", "user_id"),
    ("catalog.profiles", "id"),
    ("catalog.images", "user_id"),
    ("catalog.image_tags", "user_id"),
    ("catalog.image_likes", "user_id"),
    ("catalog.prompt_templates", "user_id"),
    ("catalog.template_uses", "user_id"),
    ("orchestrator.generations", "user_id"),
    ("orchestrator.generation_performance", "user_id"),
    ("orchestrator.generation_errors", "user_id"),
    ("orchestrator.batches", "user_id"),
    ("adapter.predictions", "user_id"),
    ("media.stored_objects", "owner_id"),
)


async def remaining(db: AsyncEngine, user: uuid.UUID) -> dict[str, int]:
    counts = {}
    async with db.connect() as conn:
        for table, column in USER_ROWS:
            found = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :u"), {"u": user})
            counts[table] = int(found.scalar_one())
    return {table: n for table, n in counts.items() if n}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (40, 90, 160)).save(out, "PNG")
    return out.getvalue()


async def generate(api: httpx.AsyncClient, prompt: str) -> dict[str, Any]:
    response = await api.post(
        "/v1/generations",
        json={"model": "flux-schnell", "prompt": prompt},
        headers={"Idempotency-Key": prompt},
    )
    assert response.status_code == 202, response.text
    done = await wait_terminal(api, response.json()["id"])
    assert done["status"] == "completed", done
    return done


async def test_deleting_an_account_leaves_no_row_or_file_of_the_user(
    stack: Stack, db: AsyncEngine, as_user: Any
) -> None:
    leaving, staying = uuid.uuid4(), uuid.uuid4()
    me, other = as_user(leaving), as_user(staying)
    mine, theirs = await asyncio.gather(
        generate(me, f"leaving {leaving.hex[:8]}"), generate(other, f"staying {staying.hex[:8]}")
    )
    upload = await me.post("/v1/uploads", files={"file": ("sketch.png", png(), "image/png")})
    assert upload.status_code == 201, upload.text
    my_image, their_image = mine["image"]["id"], theirs["image"]["id"]
    for client, image in ((me, my_image), (other, their_image)):
        assert (await client.patch(f"/v1/images/{image}", json={"is_public": True})).status_code == 200
    assert (
        await me.post(f"/v1/images/{my_image}/tags", json={"name": f"gone {leaving.hex[:6]}"})
    ).status_code == 200
    assert (await me.post(f"/v1/images/{their_image}/like")).status_code == 200
    assert (await other.post(f"/v1/images/{my_image}/like")).status_code == 200
    template = await me.post("/v1/prompt-templates", json={"name": "mine", "prompt": "a quiet harbour"})
    assert template.status_code == 201, template.text
    exported = await me.get("/v1/me/export")
    assert exported.status_code == 200, exported.text
    data = exported.json()
    assert data["profile"]["id"] == str(leaving)
    assert [g["id"] for g in data["generations"]] == [mine["id"]]
    assert {i["id"] for i in data["images"]} == {my_image, upload.json()["id"]}
    assert [t["name"] for t in data["prompt_templates"]] == ["mine"]

    before = await remaining(db, leaving)
    assert {"catalog.images", "orchestrator.generations", "media.stored_objects", "gateway.users"} <= set(
        before
    )
    objects = Path(stack.var_dir) / "objects" / str(leaving)
    assert any(p.is_file() for p in objects.rglob("*"))

    response = await me.delete("/v1/me")
    assert response.status_code == 202, response.text
    assert response.json() == {"user_id": str(leaving), "status": "deleting"}

    deadline = time.monotonic() + 30
    while (left := await remaining(db, leaving)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert left == {}
    assert not [p for p in objects.rglob("*") if p.is_file()]

    kept = (await other.get(f"/v1/images/{their_image}")).json()
    assert kept["like_count"] == 0  # the deleted user's like went with them
    assert (await other.get(f"/v1/images/{my_image}")).status_code == 404
    assert await remaining(db, staying)  # the other user keeps everything


async def test_an_account_with_a_running_generation_is_not_deleted(db: AsyncEngine, as_user: Any) -> None:
    user, running = uuid.uuid4(), uuid.uuid4()
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO gateway.generation_views (id, user_id, version, status, view, created_at, "
                "updated_at) VALUES (:g, :u, 1, 'processing', '\\x00', now(), now())"
            ),
            {"g": running, "u": user},
        )
    response = await as_user(user).delete("/v1/me")
    assert response.status_code == 409, response.text
    assert str(running) in response.json()["detail"]
    assert (await remaining(db, user))["gateway.generation_views"] == 1  # nothing was deleted
