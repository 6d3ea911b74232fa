"""Poll ownership between replicas, on the real PostgreSQL: each followed prediction has one
owner; leases are renewed by heartbeat, taken over once expired (bounded time), given up on a
graceful stop; a replica whose lease lapsed polls nothing; the adapter app polls only what it
owns and a second replica takes a killed one's predictions over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.common.contracts import PREDICT, PredictionStatus
from picture.common.messaging import Bus
from picture.devstack.waiting import eventually
from picture.replicate_adapter import store
from picture.replicate_adapter.app import create_app
from picture.replicate_adapter.poller import Poller
from picture.replicate_adapter.replicate import Prediction
from picture.replicate_adapter.settings import AdapterSettings

from .conftest import Infra, running, subscribe
from .test_service import command

LEASE = 1.5


@pytest.fixture(scope="session")
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(infra.database_url)
    yield engine
    await engine.dispose()


class CountingClient:
    def __init__(self) -> None:
        self.polled: list[str] = []

    async def get_prediction(self, prediction_id: str, *, model: str = "unknown") -> Prediction:
        self.polled.append(prediction_id)
        return Prediction(id=prediction_id, status="processing")


def poller(engine: AsyncEngine, owner: str, client: CountingClient | None = None) -> Poller:
    return Poller(
        engine,
        cast(Any, None),  # nothing terminal is polled here: no bus
        cast(Any, client or CountingClient()),
        interval=0.05,
        max_interval=0.05,
        owner=owner,
        lease_seconds=LEASE,
        heartbeat_seconds=0.3,
    )


async def followed(engine: AsyncEngine, count: int) -> set[tuple[uuid.UUID, int]]:
    """``count`` predictions created at Replicate and not finished (no owner yet)."""
    keys = set()
    for _ in range(count):
        generation_id = uuid.uuid4()
        await store.claim(
            engine,
            generation_id=generation_id,
            attempt=1,
            model="flux-schnell",
            replicate_id="black-forest-labs/flux-schnell",
            input={"prompt": "x"},
            hash=uuid.uuid4().hex,
            cost_usd=0.003,
        )
        await store.set_created(engine, generation_id, 1, f"own-{uuid.uuid4().hex}", "starting")
        keys.add((generation_id, 1))
    return keys


async def owners(engine: AsyncEngine, keys: set[tuple[uuid.UUID, int]]) -> dict[tuple[uuid.UUID, int], str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT generation_id, attempt, owner FROM adapter.predictions "
                "WHERE generation_id = ANY(:ids)"
            ),
            {"ids": [g for g, _ in keys]},
        )
        return {(r.generation_id, r.attempt): r.owner for r in rows}


async def finish_all(engine: AsyncEngine, keys: set[tuple[uuid.UUID, int]]) -> None:
    for generation_id, attempt in keys:
        await store.finish(engine, generation_id, attempt, status="canceled")


def mine(p: Poller, keys: set[tuple[uuid.UUID, int]]) -> set[tuple[uuid.UUID, int]]:
    return {key for key in keys if p.is_tracked(*key)}


async def test_concurrent_takeovers_give_each_prediction_exactly_one_owner(engine: AsyncEngine) -> None:
    keys = await followed(engine, 40)
    try:
        claims = await asyncio.gather(
            *(store.take_over(engine, f"replica-{i}", LEASE, limit=1000) for i in range(4))
        )
        taken = [{(r.generation_id, r.attempt) for r in rows} & keys for rows in claims]
        assert sum(len(t) for t in taken) == len(keys), "a prediction was claimed twice (or not at all)"
        assert set().union(*taken) == keys
        # While the leases hold, nobody else takes anything, and the owner keeps them.
        late = await store.take_over(engine, "late", LEASE, 1000)
        assert not {(r.generation_id, r.attempt) for r in late} & keys
        assert taken[0] <= await store.renew(engine, "replica-0", LEASE)
    finally:
        await finish_all(engine, keys)


async def test_a_dead_replicas_predictions_are_taken_over_after_the_lease_and_it_lets_go(
    engine: AsyncEngine,
) -> None:
    keys = await followed(engine, 5)
    a, b = poller(engine, "replica-a"), poller(engine, "replica-b")
    try:
        await a.beat()
        await b.beat()
        assert mine(a, keys) == keys
        assert not mine(b, keys), "a live lease is never taken"
        # a stops beating (killed, or stuck): b takes over once a's leases ended, not before.
        started = time.monotonic()
        while mine(b, keys) != keys:
            assert time.monotonic() - started < LEASE + 2, "not taken over within the lease"
            await asyncio.sleep(0.1)
            await b.beat()
        assert time.monotonic() - started >= LEASE * 0.5
        assert set((await owners(engine, keys)).values()) == {"replica-b"}
        # a comes back: its renewal no longer holds them, so it drops them (no double polling).
        await a.beat()
        assert not mine(a, keys)
    finally:
        await finish_all(engine, keys)


async def test_a_graceful_stop_hands_the_predictions_over_at_once(engine: AsyncEngine) -> None:
    keys = await followed(engine, 3)
    a, b = poller(engine, "replica-c"), poller(engine, "replica-d")
    try:
        await a.start()
        assert mine(a, keys) == keys
        await a.stop()
        await b.beat()
        assert mine(b, keys) == keys
    finally:
        await b.stop()
        await finish_all(engine, keys)


async def test_a_replica_polls_only_while_its_lease_holds(engine: AsyncEngine) -> None:
    keys = await followed(engine, 2)
    client = CountingClient()
    p = poller(engine, "replica-e", client)
    try:
        await p.start()
        deadline = time.monotonic() + 10
        while not client.polled:
            assert time.monotonic() < deadline, "owned predictions are polled"
            await asyncio.sleep(0.05)
        # The heartbeat stops (say the database is unreachable): once its own view of the
        # lease ends, the replica stops polling, before another may take over.
        assert p._heartbeat is not None
        p._heartbeat.cancel()
        await asyncio.sleep(LEASE)
        count = len(client.polled)
        await asyncio.sleep(0.5)
        assert len(client.polled) == count
        assert not p.owns_leases
    finally:
        await p.stop()
        await finish_all(engine, keys)


async def test_follow_refuses_a_prediction_another_replica_holds(engine: AsyncEngine) -> None:
    keys = await followed(engine, 1)
    (key,) = keys
    a, b = poller(engine, "replica-f"), poller(engine, "replica-g")
    try:
        await a.beat()
        await b.beat()
        row = await store.get(engine, *key)
        assert row is not None
        assert await a.follow(row)
        assert not await b.follow(row)
        assert not b.is_tracked(*key)
    finally:
        await finish_all(engine, keys)


async def test_a_second_adapter_finishes_what_a_killed_one_was_polling(
    settings: AdapterSettings, bus: Bus, engine: AsyncEngine
) -> None:
    short = settings.model_copy(
        update={"replicate_poll_lease_seconds": 2.0, "replicate_poll_heartbeat_seconds": 0.5}
    )
    cmd = command("a long harbour [sim:slow=2500]")
    async with subscribe(bus, cmd.generation_id) as events:
        first = create_app(short)
        context = first.router.lifespan_context(first)
        await context.__aenter__()
        killed = False
        try:
            await bus.publish(PREDICT, cmd)
            started = await events.next()
            assert started.status is PredictionStatus.STARTED
            row = await store.get(engine, cmd.generation_id, cmd.attempt)
            assert row is not None

            async def owner() -> str:
                # "started" is published before the creating replica takes the prediction
                async with engine.connect() as conn:
                    found: str | None = (
                        await conn.execute(
                            text("SELECT owner FROM adapter.predictions WHERE prediction_id = :p"),
                            {"p": row.prediction_id},
                        )
                    ).scalar_one()
                return found or ""

            await eventually(owner, what="the first adapter owning the prediction")
            # "Kill" the first: its poller stops without giving its lease up.
            poller_of_first: Poller = first.state.adapter.poller
            poller_of_first.lease_seconds = None  # a crash never reaches the hand-over
            for task in (poller_of_first._heartbeat, poller_of_first._task, *poller_of_first._polls):
                if task is not None:
                    task.cancel()
            killed = True
            async with running(create_app(short)):
                done = await events.next(timeout=15)
            assert done.status is PredictionStatus.SUCCEEDED
            assert done.prediction_id == started.prediction_id
        finally:
            await context.__aexit__(None, None, None)
            assert killed
