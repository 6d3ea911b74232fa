"""Graceful stop against a real nats-server: at SIGTERM readiness fails first while the HTTP
server still answers; consumers stop fetching; a handler that finishes within the grace is
acked; one that does not is handed back (nak) and redelivered at once to another consumer
instance of the same durable, long before the ack wait."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn

from picture.common import contracts as c
from picture.common.messaging import Bus, ConsumerOptions, Delivery, Route
from picture.common.service import GracefulServer, ServiceScope, service_app
from picture.common.settings import ServiceSettings
from picture.devstack.infra import NatsServer
from picture.devstack.ports import free_port

from .test_service import closed_port

ACK_WAIT = 30.0


def _event() -> c.ImageCreatedEvent:
    return c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=uuid.uuid4())


async def test_within_the_grace_a_handler_is_acked_after_it_one_is_handed_back_to_another_replica(
    bus: Bus, nats_server: NatsServer
) -> None:
    quick, slow = _event(), _event()
    ours = {quick.generation_id: "quick", slow.generation_id: "slow"}
    on_a: list[tuple[str, int]] = []
    on_b: list[tuple[str, int, float]] = []
    finished_on_a: list[str] = []
    both_running = asyncio.Event()
    slow_on_b = asyncio.Event()

    async def handler_a(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        name = ours.get(delivery.message.generation_id)
        if name is None:
            return  # another test's event in the stream
        on_a.append((name, delivery.num_delivered))
        if len(on_a) == 2:
            both_running.set()
        await asyncio.sleep(1.0 if name == "quick" else 3600)
        finished_on_a.append(name)

    async def handler_b(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        name = ours.get(delivery.message.generation_id)
        if name is None:
            return
        on_b.append((name, delivery.num_delivered, time.monotonic()))
        if name == "slow":
            slow_on_b.set()

    durable = f"test-stop-{uuid.uuid4().hex[:8]}"
    options = ConsumerOptions(ack_wait_seconds=ACK_WAIT, max_deliver=5)
    consumer_a = await bus.start_consumer(
        c.EVT_STREAM, durable, [Route(c.IMAGE_CREATED, handler_a)], options=options
    )
    for event in (quick, slow):
        await bus.publish(c.IMAGE_CREATED, event, generation_id=event.generation_id)
    await asyncio.wait_for(both_running.wait(), 10)

    other = await Bus.connect(nats_server.url, "test-other-replica")
    try:
        await other.start_consumer(
            c.EVT_STREAM, durable, [Route(c.IMAGE_CREATED, handler_b)], options=options
        )
        stop_began = time.monotonic()
        bus.begin_stop()
        assert bus.stopping
        await bus.quiesce(grace=2.0)
        quiesced_after = time.monotonic() - stop_began
        await asyncio.wait_for(slow_on_b.wait(), 5)
        await asyncio.sleep(0.5)  # nothing else should come to the other replica
    finally:
        await other.close()

    assert sorted(on_a) == [("quick", 1), ("slow", 1)]
    assert finished_on_a == ["quick"]  # finished within the grace: acked, never redelivered
    assert not consumer_a.in_flight
    assert [(name, n) for name, n, _ in on_b] == [("slow", 2)]  # handed back: delivery 2, on B
    redelivered_after = on_b[0][2] - stop_began
    assert 2.0 <= quiesced_after < 4.0, quiesced_after  # the grace, then the hand-back
    assert redelivered_after < 5.0 < ACK_WAIT, redelivered_after


async def test_a_consumer_takes_no_new_message_once_stopping(bus: Bus) -> None:
    seen: list[int] = []
    first = asyncio.Event()
    marker = _event()

    async def handler(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        if delivery.message.user_id == marker.user_id:
            seen.append(delivery.num_delivered)
            first.set()

    durable = f"test-stop-{uuid.uuid4().hex[:8]}"
    await bus.start_consumer(c.EVT_STREAM, durable, [Route(c.IMAGE_CREATED, handler)])
    await bus.publish(c.IMAGE_CREATED, marker, generation_id=marker.generation_id)
    await asyncio.wait_for(first.wait(), 10)
    await bus.quiesce(grace=0.0)
    later = c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=marker.user_id)
    await bus.publish(c.IMAGE_CREATED, later, generation_id=later.generation_id)
    await asyncio.sleep(1.5)
    assert seen == [1]
    info = await bus.js.consumer_info(c.EVT_STREAM.name, durable)
    assert info.num_pending >= 1  # left for the other replicas


def test_at_sigterm_readiness_fails_first_while_http_still_answers_then_the_server_stops(
    nats_server: NatsServer,
) -> None:
    """uvicorn in a thread (signal handlers belong to the main thread); ``handle_exit`` is what
    the SIGTERM handler calls. A handler in flight at that moment finishes within the grace."""
    port = free_port()
    settings = ServiceSettings(
        nats_url=nats_server.url,
        database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{closed_port()}/none",
        database_pool_size=1,
        http_port=port,
        shutdown_delay_seconds=1.5,
        shutdown_grace_seconds=5.0,
    )
    event = _event()
    handling = threading.Event()
    handled: list[int] = []
    durable = f"test-sigterm-{uuid.uuid4().hex[:8]}"

    async def handler(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        if delivery.message.generation_id != event.generation_id:
            return
        handling.set()
        await asyncio.sleep(2.5)  # beyond the delay, within the grace
        handled.append(delivery.num_delivered)

    @asynccontextmanager
    async def hook(scope: ServiceScope) -> AsyncIterator[None]:
        await scope.bus.start_consumer(c.EVT_STREAM, durable, [Route(c.IMAGE_CREATED, handler)])
        await scope.bus.publish(c.IMAGE_CREATED, event, generation_id=event.generation_id)
        yield

    app = service_app("graceful-test", settings, hook, title="Graceful")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = GracefulServer(config, app, settings.shutdown_delay_seconds)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        assert handling.wait(10)
        before = httpx.get(f"{url}/readyz", timeout=2)
        assert before.json()["failing"] == ["database"]  # no database in this test

        signalled = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)
        time.sleep(0.3)
        during = httpx.get(f"{url}/readyz", timeout=2)
        assert during.status_code == 503
        assert during.json()["failing"][0] == "shutdown"
        assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200  # still serving
        assert not handled  # the handler is still running

        thread.join(20)
        assert not thread.is_alive()
        stopped_after = time.monotonic() - signalled
    finally:
        server.should_exit = True
        thread.join(5)
    assert handled == [1]  # finished within the grace and acked
    assert 2.0 < stopped_after < settings.shutdown_grace_seconds + 5, stopped_after
    assert asyncio.run(_ack_pending(nats_server.url, durable)) == 0


async def _ack_pending(url: str, durable: str) -> int:
    bus = await Bus.connect(url, "test-inspect")
    try:
        info = await bus.js.consumer_info(c.EVT_STREAM.name, durable)
        return int(info.num_ack_pending)
    finally:
        await bus.close()
