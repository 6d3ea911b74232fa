"""The transactional outbox against a real PostgreSQL and a real JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import ClassVar

import pytest
from nats.js.api import DeliverPolicy
from sqlalchemy import MetaData, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.database import build_engine
from picture.common.messaging import Bus
from picture.common.outbox import OutboxRelay, enqueue, enqueue_all, outbox_message, outbox_table
from picture.devstack.infra import PostgresServer
from picture.devstack.ports import free_port

metadata = MetaData(schema="outbox_test")
outbox = outbox_table(metadata)


class Ping(c.Message):
    TYPE: ClassVar[str] = "test.ping"
    n: int


PING = c.Channel("picture.evt.test.{run}", Ping)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    root = tmp_path_factory.mktemp("outbox-pg")
    server = PostgresServer(root / "data", free_port(), root / "pg.log", fsync=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def engine(postgres: PostgresServer) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(postgres.url, pool_size=4)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS outbox_test"))
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def published(bus: Bus, subject: str, *, settle: float = 0.3) -> list[int]:
    """The ``n`` of every message the stream holds on ``subject`` (duplicates dropped by
    JetStream never arrive here)."""
    sub = await bus.js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    found: list[int] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=settle)
            except TimeoutError:
                return found
            found.append(c.Envelope.model_validate_json(msg.data).open(Ping).n)
    finally:
        await sub.unsubscribe()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``await check()`` is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(count or 0)


def run_subject() -> tuple[str, str]:
    run = uuid.uuid4().hex
    return run, PING.subject(run=run)


async def test_a_committed_transaction_is_published_at_once_and_marked(engine: AsyncEngine, bus: Bus) -> None:
    run, subject = run_subject()
    relay = OutboxRelay(engine, bus, outbox, idle_seconds=60, grace_seconds=60)
    async with running(relay):
        async with relay.transaction() as conn:
            await enqueue_all(conn, outbox, [outbox_message(PING, Ping(n=i), run=run) for i in range(3)])

        async def all_marked() -> bool:
            return await unpublished(engine) == 0

        await eventually(all_marked)  # the poll sleeps a minute: only the fast way can do it
    assert await published(bus, subject) == [0, 1, 2]


async def test_a_rolled_back_transaction_publishes_nothing(engine: AsyncEngine, bus: Bus) -> None:
    run, subject = run_subject()
    relay = OutboxRelay(engine, bus, outbox, idle_seconds=0.05, grace_seconds=0)
    async with running(relay):

        async def failing_change() -> None:
            async with relay.transaction() as conn:
                await enqueue(conn, outbox, PING, Ping(n=1), run=run)
                raise RuntimeError("the change fails after the message was written")

        with pytest.raises(RuntimeError):
            await failing_change()
        await asyncio.sleep(0.3)
    assert await published(bus, subject) == []
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0


async def test_a_delayed_message_waits_for_the_poll_when_due(engine: AsyncEngine, bus: Bus) -> None:
    run, subject = run_subject()
    relay = OutboxRelay(engine, bus, outbox, idle_seconds=0.05, grace_seconds=60)
    async with running(relay):
        started = time.monotonic()
        async with relay.transaction() as conn:
            await enqueue(conn, outbox, PING, Ping(n=7), run=run, delay_seconds=0.6)
        assert await published(bus, subject, settle=0.2) == []

        async def marked() -> bool:
            return await unpublished(engine) == 0

        await eventually(marked)
        assert time.monotonic() - started >= 0.6
    assert await published(bus, subject) == [7]


async def test_rows_left_behind_by_a_crash_are_published_after_the_grace_period(
    engine: AsyncEngine, bus: Bus
) -> None:
    run, subject = run_subject()
    # Written and committed, but the process died before publishing: no relay saw the commit.
    async with engine.begin() as conn:
        await enqueue(conn, outbox, PING, Ping(n=1), run=run)
    relay = OutboxRelay(engine, bus, outbox, idle_seconds=0.05, grace_seconds=0.5)
    async with running(relay):
        await asyncio.sleep(0.2)
        assert await published(bus, subject, settle=0.05) == []  # still inside the grace period

        async def marked() -> bool:
            return await unpublished(engine) == 0

        await eventually(marked)
    assert await published(bus, subject) == [1]


async def test_notify_takes_fresh_rows_committed_outside_a_relay_transaction(
    engine: AsyncEngine, bus: Bus
) -> None:
    run, subject = run_subject()
    relay = OutboxRelay(engine, bus, outbox, idle_seconds=60, grace_seconds=60)
    async with running(relay):
        await asyncio.sleep(0.1)  # the poll's first round is over; the next is a minute away
        async with engine.begin() as conn:
            await enqueue(conn, outbox, PING, Ping(n=5), run=run)
        relay.notify()

        async def marked() -> bool:
            return await unpublished(engine) == 0

        await eventually(marked)
    assert await published(bus, subject) == [5]


async def test_a_row_published_both_ways_reaches_the_stream_once(engine: AsyncEngine, bus: Bus) -> None:
    run, subject = run_subject()
    relay = OutboxRelay(engine, bus, outbox, idle_seconds=60, grace_seconds=0)
    async with running(relay):
        async with relay.transaction() as conn:
            await enqueue(conn, outbox, PING, Ping(n=3), run=run)

        async def marked() -> bool:
            return await unpublished(engine) == 0

        await eventually(marked)
        # As if the marking had been lost in a crash: the poll publishes the row again.
        async with engine.begin() as conn:
            await conn.execute(update(outbox).values(published_at=None))
        assert await relay.relay_once() == 1
    assert await published(bus, subject) == [3]


async def test_a_failed_fast_publish_is_left_to_the_poll(engine: AsyncEngine, bus: Bus) -> None:
    run, subject = run_subject()
    failing = OutboxRelay(engine, bus, outbox, idle_seconds=60, grace_seconds=0)

    async def refuse(*_: object) -> None:
        raise ConnectionError("NATS is away")

    failing._publish_one = refuse  # type: ignore[method-assign]
    async with running(failing):
        async with failing.transaction() as conn:
            await enqueue(conn, outbox, PING, Ping(n=9), run=run)
        await asyncio.sleep(0.3)
        assert await unpublished(engine) == 1
    assert await published(bus, subject, settle=0.05) == []
    # Back to normal: the poll finds the row.
    assert await OutboxRelay(engine, bus, outbox, grace_seconds=0).relay_once() == 1
    assert await published(bus, subject) == [9]


async def test_published_rows_are_deleted_after_the_retention(engine: AsyncEngine, bus: Bus) -> None:
    run, _ = run_subject()
    relay = OutboxRelay(engine, bus, outbox, grace_seconds=0, retention_seconds=3600)
    async with engine.begin() as conn:
        for n in range(3):
            await enqueue(conn, outbox, PING, Ping(n=n), run=run)
    assert await relay.relay_once(include_fresh=True) == 3
    async with engine.begin() as conn:  # two of them were published two hours ago
        ids = (await conn.scalars(select(outbox.c.id).order_by(outbox.c.id).limit(2))).all()
        two_hours_ago = func.now() - text("interval '2 hours'")
        await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published_at=two_hours_ago))
    assert await relay.delete_published() == 2
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 1
