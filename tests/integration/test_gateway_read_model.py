"""The gateway accepts generations itself and answers reads from its read model: no 404 for an
id a client was given, conditional GETs, ``Prefer: wait``, and views that never go back."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import nats
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.messaging import Bus
from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from picture.gateway.quota import GENERATION_EVENTS_CONSUMER
from tests.integration.conftest import wait_terminal

GOOD = {"model": "flux-schnell", "prompt": "a read model", "width": 512, "height": 512}


async def test_the_id_a_client_is_given_is_readable_at_once(api: httpx.AsyncClient) -> None:
    submitted = await api.post("/v1/generations", json=GOOD)
    assert submitted.status_code == 202, submitted.text
    body = submitted.json()
    assert body["status"] == "pending"
    assert submitted.headers["etag"] == '"0"'
    # Straight away, before the orchestrator may have taken the command in: never a 404.
    read = await api.get(f"/v1/generations/{body['id']}")
    assert read.status_code == 200
    assert read.json()["status"] in ("pending", "queued", "processing", "downloading", "completed")
    done = await wait_terminal(api, body["id"])
    assert done["status"] == "completed"
    assert [h["status"] for h in done["history"]][:2] == ["pending", "queued"]
    assert done["created_at"] == body["created_at"]  # the acceptance's time, kept


async def test_a_conditional_get_answers_304_until_the_view_changes(api: httpx.AsyncClient) -> None:
    generation_id = (await api.post("/v1/generations", json=GOOD)).json()["id"]
    done = await wait_terminal(api, generation_id)
    current = await api.get(f"/v1/generations/{generation_id}")
    etag = current.headers["etag"]
    assert etag.strip('"').isdigit() and int(etag.strip('"')) >= 4  # pending + four changes
    not_modified = await api.get(f"/v1/generations/{generation_id}", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == etag
    assert not_modified.content == b""
    stale = await api.get(f"/v1/generations/{generation_id}", headers={"If-None-Match": '"1"'})
    assert stale.status_code == 200
    assert stale.json()["status"] == done["status"]


async def test_prefer_wait_answers_when_the_generation_is_finished(api: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await api.post("/v1/generations", json=GOOD, headers={"Prefer": "wait=20"}, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "wait=20"
    assert response.json()["status"] == "completed"
    assert response.json()["image"] is not None
    assert elapsed < 15  # answered at completion, not at the end of the wait


async def test_prefer_wait_gives_up_after_n_seconds_with_the_newest_state(api: httpx.AsyncClient) -> None:
    slow = {**GOOD, "prompt": "[sim:slow=8000] a slow one"}
    generation_id = (await api.post("/v1/generations", json=slow)).json()["id"]
    started = time.monotonic()
    response = await api.get(f"/v1/generations/{generation_id}", headers={"Prefer": "wait=1.5"})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=1.5"
    assert response.json()["status"] in ("queued", "processing")
    assert 1.4 <= elapsed < 5
    await api.post(f"/v1/generations/{generation_id}/cancel")


async def test_a_late_event_never_turns_a_view_back(
    api: httpx.AsyncClient, stack: Stack, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    generation_id = (await api.post("/v1/generations", json=GOOD)).json()["id"]
    done = await wait_terminal(api, generation_id)
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    try:
        js = nc.jetstream()
        subject = f"picture.evt.generation.{user_id}.{generation_id}"
        last = await js.get_last_msg(c.EVT_STREAM.name, subject)
        newest = c.Envelope.model_validate_json(last.data or b"").open(c.GenerationUpdatedEvent).generation
        # The "processing" state of this generation, published again after its completion.
        older = newest.model_copy(
            update={
                "status": c.GenerationStatus.PROCESSING,
                "version": 2,
                "image": None,
                "completed_at": None,
            }
        )
        ack = await js.publish(
            subject, c.Envelope.wrap(c.GenerationUpdatedEvent(generation=older)).model_dump_json().encode()
        )
        deadline = time.monotonic() + 20
        while (
            await js.consumer_info(c.EVT_STREAM.name, GENERATION_EVENTS_CONSUMER)
        ).ack_floor.stream_seq < ack.seq:
            assert time.monotonic() < deadline, "the gateway did not take the late event in"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    again = (await api.get(f"/v1/generations/{generation_id}")).json()
    assert again["status"] == "completed"
    assert again["image"] == done["image"]
    async with db.connect() as conn:
        version = (
            await conn.execute(
                text("SELECT version FROM gateway.generation_views WHERE id = :g"), {"g": generation_id}
            )
        ).scalar_one()
    assert version == newest.version


async def test_cancel_right_after_the_submit_finds_the_generation(api: httpx.AsyncClient) -> None:
    slow = {**GOOD, "prompt": "[sim:slow=8000] cancelled at once"}
    generation_id = (await api.post("/v1/generations", json=slow)).json()["id"]
    cancelled = await api.post(f"/v1/generations/{generation_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await wait_terminal(api, generation_id))["status"] == "cancelled"


async def test_another_users_generation_is_404_from_the_read_model(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    generation_id = (await api.post("/v1/generations", json=GOOD)).json()["id"]
    other = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    headers = {"Authorization": f"Bearer {other}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers) as b:
        assert (await b.get(f"/v1/generations/{generation_id}")).status_code == 404


async def test_the_announced_views_are_the_orchestrators_own(
    api: httpx.AsyncClient, stack: Stack, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    """After each change the orchestrator announces a view built from the locked row and its
    history, without reading it back: the last one the read model keeps is exactly the view the
    orchestrator reads from its tables (history, timings, image, version)."""
    assert stack.nats is not None
    generation_id = (await api.post("/v1/generations", json=GOOD)).json()["id"]
    assert (await wait_terminal(api, generation_id))["status"] == "completed"
    async with db.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT view FROM gateway.generation_views WHERE id = :id"), {"id": generation_id}
            )
        ).scalar_one()
    bus = await Bus.connect(stack.nats.url, "read-model-tests")
    try:
        reply = await bus.request(
            c.GET_GENERATION, c.GetGenerationRequest(generation_id=generation_id, user_id=user_id)
        )
    finally:
        await bus.close()
    announced = c.GenerationView.model_validate_json(bytes(stored))
    assert announced == reply.generation
    assert [h.status for h in announced.history] == [
        c.GenerationStatus.PENDING,
        c.GenerationStatus.QUEUED,
        c.GenerationStatus.PROCESSING,
        c.GenerationStatus.DOWNLOADING,
        c.GenerationStatus.COMPLETED,
    ]
