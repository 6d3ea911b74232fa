"""Dead letters and stream replicas, against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import nats.js.errors
import pytest
from nats.aio.msg import Msg

from picture.common import contracts as c
from picture.common.messaging import Bus, ConsumerOptions, Delivery, Reject, Route


def _event() -> c.ImageCreatedEvent:
    return c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=uuid.uuid4())


async def dead_letters(bus: Bus, subject: str, expected: int, timeout: float = 10) -> list[Msg]:
    """Messages of the DLQ stream on ``subject`` (polled until ``expected`` are there)."""
    sub = await bus.js.pull_subscribe(subject, stream=c.DLQ_STREAM.name)
    found: list[Msg] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            try:
                found += await sub.fetch(expected - len(found), timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
        # Anything beyond the expected count would show up now.
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            found += await sub.fetch(1, timeout=0.3)
    finally:
        await sub.unsubscribe()
    return found


async def test_a_poison_message_is_dead_lettered_with_its_envelope(bus: Bus) -> None:
    poisoned = asyncio.Event()
    broken, rejected = _event(), _event()

    async def handler(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        if delivery.message.generation_id == rejected.generation_id:
            raise Reject("never valid")
        raise RuntimeError("always fails")

    async def on_poison(delivery: Delivery[c.ImageCreatedEvent], exc: BaseException) -> None:
        poisoned.set()

    durable = f"dlq-{uuid.uuid4().hex[:8]}"
    await bus.start_consumer(
        c.EVT_STREAM,
        durable,
        [Route(c.IMAGE_CREATED, handler)],
        options=ConsumerOptions(max_deliver=2, retry_delays=(0.05,), ack_wait_seconds=5),
        on_poison=on_poison,
    )
    envelope_id = await bus.publish(c.IMAGE_CREATED, broken, generation_id=broken.generation_id)
    await bus.publish(c.IMAGE_CREATED, rejected, generation_id=rejected.generation_id)
    await asyncio.wait_for(poisoned.wait(), 10)

    letters = await dead_letters(bus, f"picture.dlq.evt.image.created.{broken.generation_id}", 1)
    assert len(letters) == 1
    letter = letters[0]
    envelope = c.Envelope.model_validate_json(letter.data)
    assert envelope.id == envelope_id
    assert envelope.open(c.ImageCreatedEvent) == broken
    headers = letter.headers or {}
    assert headers["Picture-Original-Subject"] == f"picture.evt.image.created.{broken.generation_id}"
    assert headers["Picture-Consumer"] == durable
    assert headers["Picture-Num-Delivered"] == "2"
    assert headers["Picture-Error"] == "RuntimeError: always fails"
    # A rejected message (a decision, not a failure) is not a dead letter.
    assert await dead_letters(bus, f"picture.dlq.evt.image.created.{rejected.generation_id}", 0) == []


async def test_an_undecodable_message_is_dead_lettered(bus: Bus) -> None:
    durable = f"dlq-{uuid.uuid4().hex[:8]}"
    gid = uuid.uuid4()

    async def handler(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        raise AssertionError("must not be called")

    await bus.start_consumer(c.EVT_STREAM, durable, [Route(c.IMAGE_CREATED, handler)])
    await bus.js.publish(f"picture.evt.image.created.{gid}", b"not an envelope")

    letters = await dead_letters(bus, f"picture.dlq.evt.image.created.{gid}", 1)
    assert [m.data for m in letters] == [b"not an envelope"]
    assert (letters[0].headers or {})["Picture-Consumer"] == durable


async def test_streams_get_the_configured_replicas(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = c.StreamSpec(f"TEST_R_{uuid.uuid4().hex[:8]}", (f"test.{uuid.uuid4().hex[:8]}.>",), False, 600)
    monkeypatch.setenv("PICTURE_STREAM_REPLICAS", "1")
    await bus.ensure_streams([spec])
    assert (await bus.js.stream_info(spec.name)).config.num_replicas == 1
    # The value reaches the server: a single server refuses three replicas.
    monkeypatch.setenv("PICTURE_STREAM_REPLICAS", "3")
    with pytest.raises(nats.js.errors.APIError):
        await bus.ensure_streams([spec])
    await bus.js.delete_stream(spec.name)
