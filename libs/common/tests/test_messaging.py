"""The JetStream layer against a real nats-server: dedup, acks, redelivery, poison, queries."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from picture.common import contracts as c
from picture.common.messaging import Bus, ConsumerOptions, Delivery, QueryFailed, Reject, Retry, Route


def _event() -> c.ImageCreatedEvent:
    return c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=uuid.uuid4())


async def test_publish_with_the_same_id_is_stored_once(bus: Bus) -> None:
    event = _event()
    message_id = uuid.uuid4()
    for _ in range(3):
        await bus.publish(c.IMAGE_CREATED, event, message_id=message_id, generation_id=event.generation_id)
    info = await bus.js.stream_info(
        c.EVT_STREAM.name, subjects_filter=f"picture.evt.image.created.{event.generation_id}"
    )
    assert info.state.subjects == {f"picture.evt.image.created.{event.generation_id}": 1}


async def test_consumer_acks_retries_and_reports_poison(bus: Bus) -> None:
    seen: list[tuple[str, int]] = []
    poisoned: list[str] = []
    done = asyncio.Event()
    good, flaky, broken, rejected = (_event() for _ in range(4))

    async def handler(delivery: Delivery[c.ImageCreatedEvent]) -> None:
        gid = delivery.message.generation_id
        seen.append((str(gid), delivery.num_delivered))
        if gid == flaky.generation_id and delivery.num_delivered < 2:
            raise Retry("not yet", delay=0.05)
        if gid == broken.generation_id:
            raise RuntimeError("always fails")
        if gid == rejected.generation_id:
            raise Reject("never valid")

    async def on_poison(delivery: Delivery[c.ImageCreatedEvent], exc: BaseException) -> None:
        poisoned.append(str(delivery.message.generation_id))
        done.set()

    durable = f"test-{uuid.uuid4().hex[:8]}"
    await bus.start_consumer(
        c.EVT_STREAM,
        durable,
        [Route(c.IMAGE_CREATED, handler)],
        options=ConsumerOptions(max_deliver=3, retry_delays=(0.05,), ack_wait_seconds=5),
        on_poison=on_poison,
    )
    for event in (good, flaky, broken, rejected):
        await bus.publish(c.IMAGE_CREATED, event, generation_id=event.generation_id)
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.3)  # nothing more should arrive

    deliveries: dict[str, list[int]] = {}
    for gid, n in seen:
        deliveries.setdefault(gid, []).append(n)
    assert deliveries[str(good.generation_id)] == [1]
    assert deliveries[str(flaky.generation_id)] == [1, 2]
    assert deliveries[str(broken.generation_id)] == [1, 2, 3]
    assert deliveries[str(rejected.generation_id)] == [1]
    assert poisoned == [str(broken.generation_id)]


async def test_query_reply_and_typed_errors(bus: Bus) -> None:
    async def get_model(request: c.GetModelRequest) -> c.ModelReply:
        if request.name != "flux-schnell":
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "unknown model", field="model")
        return c.ModelReply(
            model=c.ModelSpec(name="flux-schnell", display_name="FLUX", replicate_id="bfl/flux-schnell")
        )

    await bus.serve(c.GET_MODEL, get_model)
    reply = await bus.request(c.GET_MODEL, c.GetModelRequest(name="flux-schnell"))
    assert reply.model.replicate_id == "bfl/flux-schnell"
    with pytest.raises(QueryFailed) as raised:
        await bus.request(c.GET_MODEL, c.GetModelRequest(name="nope"))
    assert (raised.value.code, raised.value.field) == (c.QueryErrorCode.NOT_FOUND, "model")


async def test_query_without_responder_is_unavailable(bus: Bus) -> None:
    with pytest.raises(QueryFailed) as raised:
        await bus.request(c.GET_IMAGE, c.GetImageRequest(image_id=uuid.uuid4(), viewer_id=None), timeout=1)
    assert raised.value.code is c.QueryErrorCode.UNAVAILABLE


async def test_a_message_with_text_postgresql_cannot_store_is_refused_not_handled(bus: Bus) -> None:
    """A NUL in any text of a message: the consumer terminates it without calling the handler
    (and goes on with the next one); a query answers INVALID naming the field."""
    handled: list[str | None] = []
    done = asyncio.Event()
    generation_id = uuid.uuid4()

    async def handler(delivery: Delivery[c.PredictionEvent]) -> None:
        handled.append(delivery.message.prediction_id)
        if delivery.message.prediction_id == "good":
            done.set()

    await bus.start_consumer(
        c.EVT_STREAM, f"test-{uuid.uuid4().hex[:8]}", [Route(c.PREDICTION_UPDATED, handler)]
    )
    for prediction_id in ("bad\x00one", "good"):
        event = c.PredictionEvent(
            generation_id=generation_id,
            attempt=1,
            prediction_id=prediction_id,
            status=c.PredictionStatus.FAILED,
            error=c.ErrorInfo(
                kind=c.ErrorKind.PERMANENT, code="x", message="y", details={"a": [prediction_id]}
            ),
        )
        await bus.publish(c.PREDICTION_UPDATED, event, generation_id=generation_id)
    await asyncio.wait_for(done.wait(), 10)
    assert handled == ["good"]

    asked: list[str] = []

    async def create_tag(request: c.TagRequest) -> c.TagReply:
        asked.append(request.name)
        raise AssertionError("not reached")

    await bus.serve(c.CREATE_TAG, create_tag)
    with pytest.raises(QueryFailed) as raised:
        await bus.request(c.CREATE_TAG, c.TagRequest(name="a\x00b"))
    assert (raised.value.code, raised.value.field) == (c.QueryErrorCode.INVALID, "name")
    assert "NUL" in raised.value.message
    assert asked == []
