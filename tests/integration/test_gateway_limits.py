"""Gateway limits against the real stack: quotas exact under concurrency and shared by two
gateway processes, 429 headers, refunds exactly once, concurrency leases, the request rate,
the anonymous tier, the store being down, idempotency, admin rights."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.database import build_pool
from picture.devstack.ports import free_port
from picture.devstack.stack import ManagedProcess, Stack
from picture.devstack.tokens import mint_token
from picture.gateway.limits import Limiter, LimitExceeded
from picture.gateway.quota import GENERATION_EVENTS_CONSUMER
from picture.gateway.settings import GatewaySettings
from tests.integration.conftest import extra_gateway, running_gateway, set_limits, wait_terminal

GOOD = {"model": "flux-schnell", "prompt": "a cat", "width": 512, "height": 512}


@pytest.fixture(scope="module")
def second_gateway(stack: Stack) -> Iterator[ManagedProcess]:
    with running_gateway(stack, "gateway-2") as process:
        yield process


def _assert_429(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/rate-limited")
    assert body["limit_reason"] == reason
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"].startswith(f'"{reason}";q=')
    assert response.headers["ratelimit"].startswith(f'"{reason}";r=0;t=')


async def limits(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/v1/me/limits")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_limits(api: httpx.AsyncClient, predicate: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await limits(api)
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"limits never matched: {body}")
        await asyncio.sleep(0.2)


async def test_fifty_parallel_submits_on_two_gateways_against_ten_remaining(
    stack: Stack, second_gateway: ManagedProcess, db: AsyncEngine, user_id: uuid.UUID, token: str
) -> None:
    await set_limits(db, user_id, hourly_limit=12, daily_limit=100, max_concurrent=100)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=60) as one,
        httpx.AsyncClient(base_url=second_gateway.url, headers=headers, timeout=60) as two,
    ):
        for _ in range(2):  # two used: 10 remain
            assert (await one.post("/v1/generations", json=GOOD)).status_code == 202
        responses = await asyncio.gather(
            *((one if i % 2 else two).post("/v1/generations", json=GOOD) for i in range(50))
        )
        statuses = [r.status_code for r in responses]
        assert statuses.count(202) == 10, statuses
        assert statuses.count(429) == 40, [r.text for r in responses if r.status_code not in (202, 429)]
        for response in responses:
            if response.status_code == 429:
                _assert_429(response, "hourly")
        # both gateways see the same numbers
        for client in (one, two):
            body = await limits(client)
            assert body["hourly_used"] == 12
            assert body["hourly_limit"] == 12
            assert body["can_generate"] is False
            assert body["limit_reason"] == "hourly"


async def test_failed_generation_refunds_once_and_releases_its_lease(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    await set_limits(db, user_id, hourly_limit=5, max_concurrent=1)
    failed = await api.post("/v1/generations", json={**GOOD, "prompt": "[sim:fail] broken"})
    assert failed.status_code == 202, failed.text
    _assert_429(await api.post("/v1/generations", json=GOOD), "concurrent")
    assert (await wait_terminal(api, failed.json()["id"]))["status"] == "failed"
    body = await wait_limits(api, lambda b: b["active_generations"] == 0 and b["hourly_used"] == 0)
    assert body["total_all_time"] == 0
    async with db.connect() as conn:
        refunded = (
            await conn.execute(
                text("SELECT refunded_at IS NOT NULL FROM gateway.charges WHERE generation_id = :g"),
                {"g": failed.json()["id"]},
            )
        ).scalar_one()
    assert refunded
    # the lease is free again: the next one is accepted; completed ones are not refunded
    ok = await api.post("/v1/generations", json=GOOD)
    assert ok.status_code == 202, ok.text
    assert (await wait_terminal(api, ok.json()["id"]))["status"] == "completed"
    body = await wait_limits(api, lambda b: b["active_generations"] == 0)
    assert body["hourly_used"] == 1
    assert body["total_all_time"] == 1


async def test_refund_is_exactly_once_when_the_event_is_redelivered(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID, stack: Stack
) -> None:
    failed = await api.post("/v1/generations", json={**GOOD, "prompt": "[sim:fail] twice"})
    view = await wait_terminal(api, failed.json()["id"])
    await wait_limits(api, lambda b: b["hourly_used"] == 0)
    assert (await api.post("/v1/generations", json=GOOD)).status_code == 202

    async def refunded_at() -> Any:
        async with db.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT refunded_at FROM gateway.charges WHERE generation_id = :g"),
                    {"g": view["id"]},
                )
            ).scalar_one()

    before = await refunded_at()
    assert before is not None
    # replay the failed event by hand (a new envelope id: past JetStream's dedupe window)
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    try:
        js = nc.jetstream()
        last = await js.get_last_msg(c.EVT_STREAM.name, f"picture.evt.generation.{user_id}.{view['id']}")
        envelope = c.Envelope.model_validate_json(last.data or b"")
        replay = c.Envelope.wrap(envelope.open(c.GenerationUpdatedEvent))
        ack = await js.publish(last.subject or "", replay.model_dump_json().encode())
        deadline = time.monotonic() + 20
        consumer = GENERATION_EVENTS_CONSUMER
        while (await js.consumer_info(c.EVT_STREAM.name, consumer)).ack_floor.stream_seq < ack.seq:
            assert time.monotonic() < deadline, "the quota consumer did not handle the replay"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    assert await refunded_at() == before
    assert (await limits(api))["hourly_used"] == 1  # the other generation still counts


async def test_request_rate_limit_is_429_with_headers(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    await set_limits(db, user_id, rate_limit_per_minute=5)
    await limits(api)  # first sight, then the override is cached for the user
    statuses = []
    for _ in range(12):
        response = await api.get("/v1/me/limits")
        statuses.append(response.status_code)
        if response.status_code == 429:
            _assert_429(response, "requests")
    assert 429 in statuses
    assert statuses.count(200) <= 5


async def test_anonymous_users_get_the_smaller_tier(stack: Stack) -> None:
    token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4(), is_anonymous=True)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        body = await limits(client)
    assert (body["hourly_limit"], body["daily_limit"], body["max_concurrent"]) == (5, 10, 1)


async def test_idempotency_key_charges_once(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.post("/v1/generations", json=GOOD, headers=headers)
    again = await api.post("/v1/generations", json=GOOD, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = await api.post("/v1/generations", json={**GOOD, "prompt": "a dog"}, headers=headers)
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert (await limits(api))["hourly_used"] == 1


async def test_idempotency_key_creates_and_charges_a_batch_once(api: httpx.AsyncClient) -> None:
    body = {"prompts": ["a red fox", "a blue whale"], "shared_settings": {"model": "flux-schnell"}}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.post("/v1/batches", json=body, headers=headers)
    again = await api.post("/v1/batches", json=body, headers=headers)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]
    ids = [i["generation_id"] for i in first.json()["items"]]
    assert [i["generation_id"] for i in again.json()["items"]] == ids
    listed = (await api.get("/v1/batches")).json()["data"]
    assert [b["id"] for b in listed].count(first.json()["id"]) == 1
    assert (await limits(api))["hourly_used"] == 2  # two items, charged once
    other = await api.post("/v1/batches", json={**body, "batch_name": "other"}, headers=headers)
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    # a key of a generation does not replay as a batch (nor the reverse)
    generation_key = {"Idempotency-Key": str(uuid.uuid4())}
    assert (await api.post("/v1/generations", json=GOOD, headers=generation_key)).status_code == 202
    assert (await api.post("/v1/batches", json=body, headers=generation_key)).status_code == 409


async def test_admin_error_stats_is_403_for_users_and_served_for_admins(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    response = await api.get("/v1/admin/errors/stats?days=3")
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")
    await set_limits(db, user_id, is_admin=True)
    response = await api.get("/v1/admin/errors/stats?days=3")
    assert response.status_code == 200, response.text
    assert set(response.json()) >= {"by_type", "by_model", "by_day", "total"}


async def test_a_user_metadata_claim_does_not_make_an_admin(stack: Stack) -> None:
    import jwt

    secret = stack.secrets["PICTURE_JWT_SECRET"]
    claims = jwt.decode(mint_token(secret), options={"verify_signature": False})
    claims["user_metadata"] = {"role": "admin", "is_admin": True}
    claims["app_metadata"] = {"role": "admin"}
    token = jwt.encode(claims, secret, algorithm="HS256")
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        assert (await client.get("/v1/admin/errors/stats")).status_code == 403


async def test_limits_store_down_is_503_not_500(stack: Stack, token: str) -> None:
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/picture"
    process = extra_gateway(stack, "gateway-nodb", PICTURE_DATABASE_URL=dead)
    process.start()
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(
            base_url=process.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.alive(), process.log_tail()
                assert time.monotonic() < deadline, process.log_tail()
                await asyncio.sleep(0.2)
            submit = await client.post("/v1/generations", json=GOOD)
            assert submit.status_code == 503, submit.text
            assert submit.headers["content-type"] == "application/problem+json"
            assert "limits store" in submit.json()["detail"]
            assert (await client.get("/v1/me/limits")).status_code == 503
            # reads that need no quota keep working (the request rate limiter fails open)
            assert (await client.get("/v1/models")).status_code == 200
    finally:
        process.close()


@pytest.fixture(scope="module")
def short_lease_gateway(stack: Stack) -> Iterator[ManagedProcess]:
    with running_gateway(stack, "gateway-short-lease", PICTURE_LEASE_SECONDS="3") as process:
        yield process


async def test_a_lost_concurrency_lease_expires_by_itself(
    short_lease_gateway: ManagedProcess, db: AsyncEngine, user_id: uuid.UUID, token: str
) -> None:
    """A generation whose terminal event never comes (it hangs) holds its concurrency slot only
    until the lease expires; then the user may submit again."""
    await set_limits(db, user_id, max_concurrent=1)
    async with httpx.AsyncClient(
        base_url=short_lease_gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        hanging = await client.post("/v1/generations", json={**GOOD, "prompt": "[sim:hang] forever"})
        assert hanging.status_code == 202, hanging.text
        taken_at = time.monotonic()
        try:
            _assert_429(await client.post("/v1/generations", json=GOOD), "concurrent")
            body = await wait_limits(client, lambda b: b["active_generations"] == 0, timeout=20)
            freed_after = time.monotonic() - taken_at
            assert body["can_generate"] is True
            view = (await client.get(f"/v1/generations/{hanging.json()['id']}")).json()
            assert view["status"] not in ("completed", "failed", "cancelled")  # still hanging: no event came
            assert freed_after >= 2.5, freed_after  # the lease, not a release, freed it
            assert (await client.post("/v1/generations", json=GOOD)).status_code == 202
        finally:
            await client.post(f"/v1/generations/{hanging.json()['id']}/cancel")


async def test_the_request_rate_allows_no_burst_across_a_minute_edge(db: AsyncEngine) -> None:
    """5 requests a minute: 10 requests within 2 s straddling a minute boundary (a clock of
    the test's own, so no waiting for a real one) get 5 answers, not 10, and the refused ones
    are told truthfully when the next request will be allowed."""
    pool = await build_pool(db.url.render_as_string(hide_password=False))
    try:
        limiter = Limiter(
            db, GatewaySettings(jwt_secret=SecretStr("x" * 40), rate_limit_per_minute=5), pool=pool
        )
        edge = datetime(2031, 1, 1, 12, 1, tzinfo=UTC)
        now = edge - timedelta(seconds=1)
        limiter.clock = lambda: now
        user = uuid.uuid4()
        allowed: list[datetime] = []
        refusals: list[dict[str, str]] = []
        for i in range(10):
            now = edge + timedelta(seconds=-1 + 0.2 * i)
            try:
                await limiter.hit(user, is_anonymous=False)
                allowed.append(now)
            except LimitExceeded as refused:
                refusals.append(refused.headers or {})
        assert len(allowed) == 5, allowed
        assert {h["RateLimit-Policy"] for h in refusals} == {'"requests";q=5;w=60'}
        # the five were spent at once: the next one is due a fifth of a minute after the first
        retry_after = [int(h["Retry-After"]) for h in refusals]
        assert all(10 <= seconds <= 12 for seconds in retry_after), retry_after
    finally:
        await pool.close()


@pytest.mark.parametrize("quota", ["hourly", "daily"])
async def test_a_quota_allows_no_burst_across_its_window_edge(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID, quota: str
) -> None:
    """The quota was spent in the last second of the previous hour (day); a minute later it is
    still spent: no new window gives a second quota at once. The 429 says when a unit comes
    back, and GET /v1/me/limits agrees."""
    unit = "hour" if quota == "hourly" else "day"
    limits_of = {
        "hourly": {"hourly_limit": 5, "daily_limit": 100},
        "daily": {"hourly_limit": 100, "daily_limit": 5},
    }
    await set_limits(db, user_id, max_concurrent=100, **limits_of[quota])
    for _ in range(5):
        assert (await api.post("/v1/generations", json=GOOD)).status_code == 202
    async with db.begin() as conn:
        spent_at = (
            (
                await conn.execute(
                    text(
                        "UPDATE gateway.charges "
                        f"SET charged_at = date_trunc('{unit}', now(), 'UTC') - interval '1 second' "
                        "WHERE user_id = :u RETURNING charged_at"
                    ),
                    {"u": user_id},
                )
            )
            .scalars()
            .first()
        )
    statuses = [(await api.post("/v1/generations", json=GOOD)) for _ in range(5)]
    assert [r.status_code for r in statuses] == [429] * 5, [r.text for r in statuses]
    comes_back = spent_at + timedelta(hours=1 if quota == "hourly" else 24)
    for response in statuses:
        _assert_429(response, quota)
        expected = (comes_back - datetime.now(UTC)).total_seconds()
        assert abs(int(response.headers["retry-after"]) - expected) < 10, (response.headers, expected)
    body = await limits(api)
    assert body[f"{quota}_used"] == 5
    assert body["can_generate"] is False
    assert body["limit_reason"] == quota
    assert abs((datetime.fromisoformat(body[f"{quota}_reset_at"]) - comes_back).total_seconds()) < 1
