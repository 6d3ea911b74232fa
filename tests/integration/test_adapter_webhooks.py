"""Replicate webhooks through the whole system: the simulator signs and sends them to the
gateway, the gateway verifies them and hands them to the adapter over NATS, the adapter
finishes the prediction from them (polling only as the fallback). Also the refusals (nothing
is forwarded) and the adapter's cost totals query."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.contracts import (
    COST_TOTALS,
    REPLICATE_WEBHOOK,
    CostTotalsRequest,
    Envelope,
    ReplicateWebhookCommand,
)
from picture.common.messaging import Bus
from picture.devstack.stack import Stack
from picture.replicate_simulator.webhooks import sign
from tests.integration.conftest import wait_terminal


@pytest.fixture(scope="module")
async def bus(stack: Stack) -> AsyncIterator[Bus]:
    assert stack.nats is not None
    bus = await Bus.connect(stack.nats.url, "adapter-webhook-tests")
    yield bus
    await bus.close()


async def _submit(api: httpx.AsyncClient, prompt: str) -> str:
    response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": prompt, "seed": 3})
    assert response.status_code == 202, response.text
    generation_id: str = response.json()["id"]
    return generation_id


async def _prediction_row(db: AsyncEngine, generation_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT status, completed_via, user_id, cost_usd FROM adapter.predictions "
                        "WHERE generation_id = :id"
                    ),
                    {"id": generation_id},
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def test_a_generation_completes_via_the_webhook_and_its_cost_is_totalled(
    api: httpx.AsyncClient, db: AsyncEngine, bus: Bus, user_id: uuid.UUID
) -> None:
    generation_id = await _submit(api, "a heron in the reeds")
    done = await wait_terminal(api, generation_id)
    assert done["status"] == "completed", done
    row = await _prediction_row(db, generation_id)
    # With webhooks on, the adapter's first poll comes after 15 s: the webhook finished it.
    assert row["status"] == "succeeded"
    assert row["completed_via"] == "webhook"
    assert row["user_id"] == user_id

    mine = await bus.request(COST_TOTALS, CostTotalsRequest(days=1, user_id=user_id))
    assert [(r.model, r.user_id, r.predictions) for r in mine.rows] == [("flux-schnell", user_id, 1)]
    assert mine.rows[0].cost_usd == pytest.approx(row["cost_usd"])
    assert mine.rows[0].cost_usd > 0
    assert mine.rows[0].day == time.strftime("%Y-%m-%d", time.gmtime())
    everyone = await bus.request(COST_TOTALS, CostTotalsRequest(days=7))
    flux = [r for r in everyone.rows if r.model == "flux-schnell" and r.day == mine.rows[0].day]
    assert len(flux) == 1
    assert flux[0].user_id is None
    assert flux[0].predictions >= 1
    assert everyone.total_usd >= mine.total_usd


async def test_polling_takes_over_when_webhooks_are_lost(
    api: httpx.AsyncClient, db: AsyncEngine, stack: Stack
) -> None:
    async with httpx.AsyncClient(base_url=stack.simulator_url) as sim:
        (await sim.put("/_control/config", json={"drop_webhooks": True})).raise_for_status()
        try:
            generation_id = await _submit(api, "a lighthouse in fog")
            done = await wait_terminal(api, generation_id, timeout=90)
        finally:
            (await sim.put("/_control/config", json={"drop_webhooks": False})).raise_for_status()
    assert done["status"] == "completed", done
    row = await _prediction_row(db, generation_id)
    assert row["completed_via"] == "poll"


def _signed(secret: str, body: bytes, *, msg_id: str | None = None, at: int | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if at is None else at
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


async def test_refused_webhooks_are_not_forwarded(stack: Stack, bus: Bus) -> None:
    secret = stack.secrets["PICTURE_REPLICATE_WEBHOOK_SECRET"]
    forwarded: list[str] = []
    arrived = asyncio.Event()
    sentinel = f"msg_sentinel_{uuid.uuid4().hex}"

    async def on_msg(msg: Any) -> None:
        command = Envelope.model_validate_json(msg.data).open(ReplicateWebhookCommand)
        forwarded.append(command.webhook_id)
        if command.webhook_id == sentinel:
            arrived.set()

    sub = await bus.nc.subscribe(REPLICATE_WEBHOOK.subject(), cb=on_msg)
    body = json.dumps({"id": f"p{uuid.uuid4().hex[:20]}", "status": "succeeded", "output": []}).encode()
    other_secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    accepted_id = f"msg_{uuid.uuid4().hex}"
    try:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as gw:
            url = "/v1/webhooks/replicate"

            async def post(headers: dict[str, str], content: bytes = body) -> httpx.Response:
                return await gw.post(url, content=content, headers=headers)

            good = _signed(secret, body, msg_id=accepted_id)
            for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                response = await post({k: v for k, v in good.items() if k != missing})
                assert response.status_code == 400, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["field"] == missing
            bad_signature = await post(_signed(other_secret, body))
            assert bad_signature.status_code == 401
            tampered = await post(good, body.replace(b"succeeded", b"failed"))
            assert tampered.status_code == 401
            stale = await post(_signed(secret, body, at=int(time.time()) - 301))
            assert stale.status_code == 401
            assert stale.json()["field"] == "webhook-timestamp"
            future = await post(_signed(secret, body, at=int(time.time()) + 301))
            assert future.status_code == 401
            huge = b'{"id": "p", "pad": "' + b"x" * 1_100_000 + b'"}'
            assert (await post(_signed(secret, huge), huge)).status_code == 413
            not_json = b"not json"
            assert (await post(_signed(secret, not_json), not_json)).status_code == 400

            assert (await post(good)).status_code == 204
            replay = await post(good)
            assert replay.status_code == 409
            replay_resigned = await post(_signed(secret, body, msg_id=accepted_id))
            assert replay_resigned.status_code == 409

            assert (await post(_signed(secret, body, msg_id=sentinel))).status_code == 204
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await sub.unsubscribe()
    # Everything published before the sentinel has arrived by now (one publisher, in order).
    assert forwarded == [accepted_id, sentinel]
