"""Resilience against the simulator: the circuit breaker (requests counted at the simulator),
429 handling, and reconciliation of a create that timed out (no duplicate prediction)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from picture.common.contracts import (
    PREDICT,
    REPLICATE_WEBHOOK,
    PredictionStatus,
    ReplicateWebhookCommand,
)
from picture.common.database import build_engine
from picture.common.messaging import Bus
from picture.devstack.waiting import eventually
from picture.replicate_adapter import store
from picture.replicate_adapter.app import create_app
from picture.replicate_adapter.breaker import BreakerOpen, CircuitBreaker, State
from picture.replicate_adapter.errors import PermanentReplicateError, TransientReplicateError
from picture.replicate_adapter.metrics import REQUESTS
from picture.replicate_adapter.replicate import ReplicateClient, build_http_client
from picture.replicate_adapter.settings import AdapterSettings

from .conftest import SIM_TOKEN, Infra, running, subscribe
from .test_service import command, sim_predictions


@pytest.fixture
async def control(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=infra.sim_url, timeout=10) as http:
        yield http
        await http.put("/_control/config", json={"force_count": 0, "force_timeout_ms": 0})


async def requests_seen(control: httpx.AsyncClient) -> int:
    count: int = (await control.get("/_control/stats")).raise_for_status().json()["requests"]
    return count


@pytest.fixture
async def client(infra: Infra) -> AsyncIterator[ReplicateClient]:
    http = build_http_client(infra.sim_url, SIM_TOKEN, timeout=5)
    breaker = CircuitBreaker(
        window_seconds=30, min_calls=4, failure_rate=0.5, open_seconds=0.5, half_open_probes=2
    )
    yield ReplicateClient(http, breaker=breaker)
    await http.aclose()


async def test_breaker_opens_at_threshold_and_sends_nothing_while_open(
    client: ReplicateClient, control: httpx.AsyncClient
) -> None:
    before = await requests_seen(control)
    (await control.put("/_control/config", json={"force_status": 503, "force_count": 4})).raise_for_status()
    for _ in range(4):
        with pytest.raises(TransientReplicateError) as failed:
            await client.get_prediction("anything")
        assert not isinstance(failed.value, BreakerOpen)
    assert client.breaker.state is State.OPEN
    assert await requests_seen(control) == before + 4
    for _ in range(25):
        with pytest.raises(BreakerOpen):
            await client.get_prediction("anything")
    assert await requests_seen(control) == before + 4  # zero calls while open

    # Half-open after open_seconds: two probes; a 404 is an answer, so Replicate is up.
    await eventually(lambda: client.breaker.state is State.HALF_OPEN, timeout=5, interval=0.02)
    for _ in range(2):
        with pytest.raises(PermanentReplicateError):
            await client.get_prediction("does-not-exist")
    assert client.breaker.state is State.CLOSED
    assert await requests_seen(control) == before + 6


async def test_a_failing_half_open_probe_opens_again(
    client: ReplicateClient, control: httpx.AsyncClient
) -> None:
    (await control.put("/_control/config", json={"force_status": 500, "force_count": 5})).raise_for_status()
    for _ in range(4):
        with pytest.raises(TransientReplicateError):
            await client.get_prediction("anything")
    await eventually(lambda: client.breaker.state is State.HALF_OPEN, timeout=5, interval=0.02)
    before = await requests_seen(control)
    with pytest.raises(TransientReplicateError) as probe:
        await client.get_prediction("anything")  # the fifth forced 500
    assert not isinstance(probe.value, BreakerOpen)
    assert client.breaker.state is State.OPEN
    with pytest.raises(BreakerOpen):
        await client.get_prediction("anything")
    assert await requests_seen(control) == before + 1


async def test_429_is_honoured_and_never_opens_the_breaker(
    client: ReplicateClient, control: httpx.AsyncClient
) -> None:
    (await control.put("/_control/config", json={"force_status": 429, "force_count": 10})).raise_for_status()
    for _ in range(10):
        with pytest.raises(TransientReplicateError) as throttled:
            await client.get_prediction("anything")
        assert throttled.value.status == 429
        assert throttled.value.retry_after == 30.0  # "Your rate limit resets in ~30s."
    assert client.breaker.state is State.CLOSED


async def test_throttled_create_is_retried_after_a_capped_wait(
    settings: AdapterSettings, bus: Bus, infra: Infra, control: httpx.AsyncClient
) -> None:
    # Replicate says "resets in ~30s"; the cap (0.5 s) keeps the retry close.
    capped = settings.model_copy(update={"replicate_max_retry_after_seconds": 0.5})
    marker = f"throttled-{uuid.uuid4()}"
    cmd = command(f"a kite {marker}")
    (await control.put("/_control/config", json={"force_status": 429, "force_count": 2})).raise_for_status()
    async with running(create_app(capped)) as app, subscribe(bus, cmd.generation_id) as events:
        await bus.publish(PREDICT, cmd)
        started = await events.next(timeout=15)
        assert started.status is PredictionStatus.STARTED
        done = await events.next(timeout=15)
        assert app.state.breaker.state is State.CLOSED
    assert done.status is PredictionStatus.SUCCEEDED, done.error
    assert len(await sim_predictions(infra, marker)) == 1


async def test_create_that_timed_out_is_reconciled_not_created_twice(
    settings: AdapterSettings, bus: Bus, infra: Infra, control: httpx.AsyncClient
) -> None:
    # The simulator creates the prediction, then holds the answer past the client's timeout.
    short = settings.model_copy(update={"replicate_timeout_seconds": 1.0})
    marker = f"timeout-{uuid.uuid4()}"
    cmd = command(f"a lantern {marker}")
    (
        await control.put("/_control/config", json={"force_timeout_ms": 2500, "force_count": 1})
    ).raise_for_status()
    timeouts = REQUESTS.labels("create", "transient")._value.get()
    lists = REQUESTS.labels("list", "ok")._value.get()
    async with running(create_app(short)), subscribe(bus, cmd.generation_id) as events:
        await bus.publish(PREDICT, cmd)
        started = await events.next(timeout=20)
        assert started.status is PredictionStatus.STARTED
        done = await events.next(timeout=20)
    assert done.status is PredictionStatus.SUCCEEDED, done.error
    found = await sim_predictions(infra, marker)
    assert [p["id"] for p in found] == [done.prediction_id]
    # The first create timed out and the prediction was found by listing, not created again.
    assert REQUESTS.labels("create", "transient")._value.get() == timeouts + 1
    assert REQUESTS.labels("list", "ok")._value.get() > lists


async def test_reconcile_adopts_only_its_own_of_two_identical_requests(
    settings: AdapterSettings, bus: Bus, infra: Infra, control: httpx.AsyncClient
) -> None:
    """Generation A's create times out after the simulator made it; generation B sends the very
    same input meanwhile and gets its answer. A's reconcile sees both predictions (same model,
    same input hash, both inside A's window) and adopts its own, never B's."""
    short = settings.model_copy(update={"replicate_timeout_seconds": 1.0})
    marker = f"twins-{uuid.uuid4()}"
    first, second = command(f"a lantern {marker}"), command(f"a lantern {marker}")
    assert first.parameters == second.parameters  # identical requests, different generations
    (
        await control.put("/_control/config", json={"force_timeout_ms": 2500, "force_count": 1})
    ).raise_for_status()
    async with (
        running(create_app(short)),
        subscribe(bus, first.generation_id) as a_events,
        subscribe(bus, second.generation_id) as b_events,
    ):
        await bus.publish(PREDICT, first)
        # A's prediction exists, its answer held
        await eventually(lambda: sim_predictions(infra, marker), what="A's prediction at the simulator")
        await bus.publish(PREDICT, second)
        b_started = await b_events.next(timeout=20)
        a_started = await a_events.next(timeout=20)
        a_done, b_done = await a_events.next(timeout=20), await b_events.next(timeout=20)
    assert a_done.status is b_done.status is PredictionStatus.SUCCEEDED
    found = await sim_predictions(infra, marker)  # newest first
    assert len(found) == 2
    b_id, a_id = (p["id"] for p in found)
    assert (a_started.prediction_id, a_done.prediction_id) == (a_id, a_id)
    assert (b_started.prediction_id, b_done.prediction_id) == (b_id, b_id)


async def test_a_webhook_naming_the_attempt_settles_a_create_whose_answer_was_lost(
    settings: AdapterSettings, bus: Bus, infra: Infra
) -> None:
    """The create's answer never came back (the row has no prediction id); Replicate's webhook
    to the URL that names the attempt carries the prediction: the adapter adopts it, and a
    second prediction for the same attempt is canceled as a duplicate."""
    cmd = command(f"a kite {uuid.uuid4()}")
    engine = build_engine(infra.database_url)
    try:
        await store.claim(
            engine,
            generation_id=cmd.generation_id,
            attempt=1,
            model=cmd.model.name,
            replicate_id=cmd.model.replicate_id,
            input={"prompt": cmd.parameters.prompt},
            hash="lost-answer",
            cost_usd=0.003,
        )
        async with (
            httpx.AsyncClient(
                base_url=infra.sim_url, headers={"Authorization": f"Bearer {SIM_TOKEN}"}, timeout=10
            ) as sim,
            running(create_app(settings)),
            subscribe(bus, cmd.generation_id) as events,
        ):
            made, extra = [
                (
                    await sim.post(
                        "/v1/models/black-forest-labs/flux-schnell/predictions",
                        json={"input": {"prompt": f"{cmd.parameters.prompt} [sim:slow=3000]"}},
                    )
                ).json()
                for _ in range(2)
            ]
            for prediction in (made, extra):
                await bus.publish(
                    REPLICATE_WEBHOOK,
                    ReplicateWebhookCommand(
                        webhook_id=f"msg_{prediction['id']}",
                        prediction=prediction,
                        received_at=datetime.now(UTC),
                        generation_id=cmd.generation_id,
                        attempt=1,
                    ),
                )
            started = await events.next(timeout=15)
            assert (started.status, started.prediction_id) == (PredictionStatus.STARTED, made["id"])
            done = await events.next(timeout=30)
            assert (done.status, done.prediction_id) == (PredictionStatus.SUCCEEDED, made["id"])

            async def duplicate_canceled() -> bool:
                return bool((await sim.get(f"/v1/predictions/{extra['id']}")).json()["status"] == "canceled")

            await eventually(duplicate_canceled, timeout=15, what="the duplicate canceled")
    finally:
        await engine.dispose()


async def test_a_create_handed_back_at_a_stop_is_reconciled_not_created_twice(
    settings: AdapterSettings, bus: Bus, infra: Infra, control: httpx.AsyncClient
) -> None:
    """A replica stops (graceful, short grace) while its create is in flight: the simulator
    made the prediction but holds the answer. The handler is cancelled and its message handed
    back at once; the next replica reconciles (finds the prediction by listing) instead of
    creating a second one."""
    stopping = settings.model_copy(update={"shutdown_grace_seconds": 0.2})
    marker = f"handed-back-{uuid.uuid4()}"
    cmd = command(f"a lantern {marker}")
    (
        await control.put("/_control/config", json={"force_timeout_ms": 4000, "force_count": 1})
    ).raise_for_status()
    lists = REQUESTS.labels("list", "ok")._value.get()
    async with subscribe(bus, cmd.generation_id) as events:
        async with running(create_app(stopping)):
            await bus.publish(PREDICT, cmd)
            await eventually(lambda: sim_predictions(infra, marker), what="the prediction at the simulator")
        stopped = time.monotonic()  # the create's answer still held: it was handed back
        async with running(create_app(settings)):
            started = await events.next(timeout=20)
            done = await events.next(timeout=20)
            taken_over_after = time.monotonic() - stopped
    assert started.status is PredictionStatus.STARTED
    assert done.status is PredictionStatus.SUCCEEDED, done.error
    found = await sim_predictions(infra, marker)
    assert [p["id"] for p in found] == [started.prediction_id] == [done.prediction_id]
    assert REQUESTS.labels("list", "ok")._value.get() > lists  # reconciled by listing
    # Handed back, not left to the ack wait (60 s).
    assert taken_over_after < 15, taken_over_after


async def test_an_interrupted_handler_leaves_a_create_uncertain_only_once_one_was_sent(infra: Infra) -> None:
    """Interrupted before sending: nothing can exist at Replicate, the next delivery creates
    (status stays ``creating``). After sending: the next delivery must reconcile first."""
    engine = build_engine(infra.database_url)
    try:
        statuses = []
        for sent in (False, True):
            cmd = command(f"a kite {uuid.uuid4()}")
            key = (cmd.generation_id, cmd.attempt)
            await store.claim(
                engine,
                generation_id=cmd.generation_id,
                attempt=cmd.attempt,
                model=cmd.model.name,
                replicate_id=cmd.model.replicate_id,
                input={"prompt": cmd.parameters.prompt},
                hash=f"interrupted-{sent}",
                cost_usd=0.003,
            )
            assert await store.lease(engine, *key, 60) is not None
            if sent:
                await store.create_sending(engine, *key)
            await store.interrupted(engine, *key)
            row = await store.get(engine, *key)
            assert row is not None
            statuses.append((row.status, row.create_settled_at is not None))
            again = await store.lease(engine, *key, 60)  # the lease was given back
            assert again is not None
            assert again.status == row.status
    finally:
        await engine.dispose()
    assert statuses == [(store.CREATING, False), (store.CREATE_UNCERTAIN, True)]
