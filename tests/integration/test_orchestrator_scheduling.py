"""Cancel, lists, dedup cache and error statistics through the real system (scheduling's fairness
is tested in test_crash_recovery.py, on a stack whose gateway admits ten at once)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.messaging import Bus
from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from picture.devstack.waiting import eventually
from tests.integration.conftest import wait_terminal


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[Bus]:
    assert stack.nats is not None
    connected = await Bus.connect(stack.nats.url, "orchestrator-tests")
    yield connected
    await connected.close()


async def test_cancel_a_running_generation_cancels_the_prediction(
    api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    response = await api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": "[sim:slow=20000] a long dream"}
    )
    generation_id = response.json()["id"]

    async def processing() -> bool:
        body = (await api.get(f"/v1/generations/{generation_id}")).json()
        return bool(body["status"] == "processing")

    await eventually(processing, timeout=30, interval=0.1, what="processing")
    cancelled = await api.post(f"/v1/generations/{generation_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["error_message"] == "Cancelled by user"
    assert [h["status"] for h in body["history"]][-1] == "cancelled"

    again = await api.post(f"/v1/generations/{generation_id}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    async def canceled_at_replicate() -> bool:
        async with db.connect() as conn:
            status = (
                await conn.execute(
                    text("SELECT status FROM adapter.predictions WHERE generation_id = :id"),
                    {"id": generation_id},
                )
            ).scalar_one_or_none()
        return status == "canceled"

    await eventually(
        canceled_at_replicate, timeout=30, interval=0.1, what="prediction canceled at the simulator"
    )
    # The adapter's "canceled" report arrives after the terminal state and changes nothing.
    final = (await api.get(f"/v1/generations/{generation_id}")).json()
    assert final["status"] == "cancelled"


async def test_cancel_unknown_or_anothers_generation_is_not_found(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": "mine"})
    other = mint_token(stack.secrets["PICTURE_JWT_SECRET"])
    answer = await api.post(
        f"/v1/generations/{response.json()['id']}/cancel", headers={"Authorization": f"Bearer {other}"}
    )
    assert answer.status_code == 404
    assert (await api.post(f"/v1/generations/{uuid.uuid4()}/cancel")).status_code == 404


async def test_list_is_newest_first_filtered_and_paginated(api: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):  # one after the other: the gateway allows few in flight per user
        response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": f"item {i}"})
        ids.append(response.json()["id"])
        await wait_terminal(api, ids[-1])
    failing = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": "[sim:fail] no"})
    await wait_terminal(api, failing.json()["id"])

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/generations", params=params)).json()
        seen += [g["id"] for g in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [failing.json()["id"], *reversed(ids)]

    failed = (await api.get("/v1/generations", params={"status": "failed"})).json()
    assert [g["id"] for g in failed["data"]] == [failing.json()["id"]]
    bad = await api.get("/v1/generations", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422


async def test_an_identical_seeded_request_reuses_the_image_unless_opted_out(
    api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    body = {"model": "flux-schnell", "prompt": "a cached castle", "width": 512, "height": 512, "seed": 42}
    first = await wait_terminal(api, (await api.post("/v1/generations", json=body)).json()["id"])
    # Accepted by the gateway, then completed by the orchestrator at once (no prediction): a
    # client that waits for it has it in the answer.
    second = await api.post("/v1/generations", json=body, headers={"Prefer": "wait=10"})
    assert second.status_code == 202
    reused = second.json()
    assert reused["status"] == "completed"
    assert reused["image"]["id"] == first["image"]["id"]
    assert (await api.get(reused["image"]["url"])).status_code == 200
    fresh = await wait_terminal(
        api, (await api.post("/v1/generations", json={**body, "reuse": False})).json()["id"]
    )
    assert fresh["image"]["id"] != first["image"]["id"]
    async with db.connect() as conn:
        predictions = (
            (
                await conn.execute(
                    text("SELECT generation_id FROM adapter.predictions WHERE generation_id = ANY(:ids)"),
                    {"ids": [uuid.UUID(first["id"]), uuid.UUID(reused["id"]), uuid.UUID(fresh["id"])]},
                )
            )
            .scalars()
            .all()
        )
        reused_from = (
            await conn.execute(
                text("SELECT reused_from FROM orchestrator.generations WHERE id = :id"), {"id": reused["id"]}
            )
        ).scalar_one()
    assert sorted(map(str, predictions)) == sorted([first["id"], fresh["id"]])
    assert str(reused_from) == first["id"]


async def test_error_stats_count_errors_by_day_model_and_type(
    api: httpx.AsyncClient, bus: Bus, user_id: uuid.UUID
) -> None:
    for _ in range(2):
        response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": "[sim:fail] x"})
        await wait_terminal(api, response.json()["id"])
    mine = await bus.request(c.ERROR_STATS, c.ErrorStatsRequest(user_id=user_id))
    assert mine.total == 2
    assert [(r.model, r.error_type, r.error_kind, r.count) for r in mine.rows] == [
        ("flux-schnell", "prediction_failed", c.ErrorKind.PERMANENT, 2)
    ]
    everyone = await bus.request(c.ERROR_STATS, c.ErrorStatsRequest())
    assert everyone.total >= 2
