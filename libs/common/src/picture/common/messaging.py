"""A thin layer on nats-py: JetStream publish and durable pull consumers, request/reply queries.

- :meth:`Bus.publish` wraps a message in an :class:`~picture.common.contracts.Envelope`,
  sets ``Nats-Msg-Id`` to the envelope id (JetStream drops duplicates in its window) and
  injects W3C trace context into the headers.
- :class:`Consumer` runs one durable pull consumer with explicit acks. A handler that returns
  acks the message; one that raises :class:`Retry` (or anything else) is nak'ed with a delay
  that grows with the delivery count; :class:`Reject` terminates it. On the last allowed
  delivery the ``on_poison`` hook runs first, so the owner can record a failure instead of
  losing the message silently; then the envelope goes to the dead-letter stream
  (``picture.dlq.>``, see :data:`~picture.common.contracts.DLQ_STREAM`), as does a message that
  cannot be decoded. Long handlers call :meth:`Delivery.in_progress`.
- Graceful stop: :meth:`Bus.begin_stop` (at SIGTERM) stops the fetching at once;
  :meth:`Bus.quiesce` then gives the handlers in flight until ``grace`` seconds after that to
  finish (acked as usual) and hands back (nak, no delay) what is still unfinished, so another
  replica takes it at once instead of after the ack wait. Handlers must tolerate that (they
  already must tolerate a redelivery after a crash at any point).
- :meth:`Bus.ensure_streams` creates the streams with ``PICTURE_STREAM_REPLICAS`` replicas.
- :meth:`Bus.serve` answers a :class:`~picture.common.contracts.Query` in a queue group;
  handlers raise :class:`QueryFailed` for typed errors. :meth:`Bus.request` raises it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, cast

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from picture.common.contracts import (
    DLQ_SUBJECT_PREFIX,
    STREAMS,
    Channel,
    ConsumerSpec,
    Envelope,
    M,
    Message,
    Query,
    QueryError,
    QueryErrorCode,
    QueryReply,
    R,
    StreamSpec,
)
from picture.common.text import UnstorableText

log = logging.getLogger(__name__)
DRAIN_TIMEOUT_SECONDS = 3.0
# How long a pull for a known backlog may wait for messages that another replica took first.
FETCH_BATCH_SECONDS = 0.05
# How long a pull for one message waits (a stopping consumer ends within it).
FETCH_ONE_SECONDS = 1.0
tracer = trace.get_tracer("picture.common.messaging")

CONSUMER_MESSAGES = Counter(
    "picture_consumer_messages_total",
    "Messages handled by a JetStream consumer, by outcome (ack, nak, term, poison).",
    ["consumer", "type", "outcome"],
)
CONSUMER_DURATION = Histogram(
    "picture_consumer_handle_seconds",
    "Time a consumer spent handling one message.",
    ["consumer", "type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_REDELIVERIES = Counter(
    "picture_consumer_redeliveries_total",
    "Messages received with a delivery count above one.",
    ["consumer"],
)
DEAD_LETTERS = Counter(
    "picture_consumer_dead_letters_total",
    "Messages copied to the dead-letter stream (PICTURE_DLQ) after their last failed delivery.",
    ["consumer"],
)
QUERY_DURATION = Histogram(
    "picture_query_handle_seconds",
    "Time spent answering one request/reply query, by subject and outcome.",
    ["subject", "outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)


class Retry(Exception):
    """Raise from a handler to redeliver the message after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


def _invalid_field(exc: ValueError) -> str | None:
    """The dotted path of the input a query refused, when known."""
    if isinstance(exc, UnstorableText):
        return exc.field
    if isinstance(exc, ValidationError) and exc.errors():
        return ".".join(str(part) for part in exc.errors()[0]["loc"]) or None
    return None


class Reject(Exception):
    """Raise from a handler for a message that can never be handled (terminated, not retried)."""


class QueryFailed(Exception):
    """A typed query error, raised by handlers and by :meth:`Bus.request`."""

    def __init__(self, code: QueryErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def to_error(self) -> QueryError:
        return QueryError(code=self.code, message=self.message, field=self.field)


def _trace_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    headers: dict[str, str] = dict(extra or {})
    propagate.inject(headers)
    return headers


@dataclass
class Delivery(Generic[M]):
    """One received JetStream message, decoded."""

    message: M
    envelope: Envelope
    subject: str
    num_delivered: int
    raw: Msg

    async def in_progress(self) -> None:
        """Tell the server we are still working (resets the ack timer)."""
        await self.raw.in_progress()


Handler = Callable[[Delivery[Any]], Awaitable[None]]
PoisonHook = Callable[[Delivery[Any], BaseException], Awaitable[None]]


@dataclass(frozen=True)
class Route(Generic[M]):
    channel: Channel[M]
    handler: Callable[[Delivery[M]], Awaitable[None]]


@dataclass
class ConsumerOptions:
    ack_wait_seconds: float = 30.0
    max_deliver: int = 10
    max_ack_pending: int = 1000
    max_in_flight: int = 64  # messages handled concurrently by this process
    # Delay before redelivery, by delivery count (the last value repeats).
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

    @classmethod
    def of(cls, spec: ConsumerSpec, **overrides: Any) -> ConsumerOptions:
        """The declared settings of ``spec`` (``overrides``: this process's own, e.g. from its
        settings, or ``max_in_flight``)."""
        declared: dict[str, Any] = {
            "ack_wait_seconds": spec.ack_wait_seconds,
            "max_deliver": spec.max_deliver,
            "max_ack_pending": spec.max_ack_pending,
        }
        return cls(**{**declared, **overrides})


class Bus:
    """One NATS connection and its JetStream context, per process."""

    def __init__(self, nc: NATS, service: str, query_timeout: float = 5.0) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.service = service
        self.query_timeout = query_timeout
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._answers: set[asyncio.Task[None]] = set()
        self._consumers: list[Consumer] = []
        self._stop_began: float | None = None  # loop time of begin_stop()

    @classmethod
    async def connect(cls, url: str, service: str, query_timeout: float = 5.0) -> Bus:
        async def on_error(exc: Exception) -> None:
            log.warning("nats error: %s", exc)

        async def on_disconnect() -> None:
            log.warning("nats disconnected")

        async def on_reconnect() -> None:
            log.info("nats reconnected")

        # Several servers (a cluster) as a comma-separated list: the client starts with any
        # one that answers and fails over to the others.
        servers = [part.strip() for part in url.split(",") if part.strip()]
        nc = await nats.connect(
            servers,
            name=service,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
        return cls(nc, service, query_timeout)

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def stopping(self) -> bool:
        """:meth:`begin_stop` was called: no new message is taken any more."""
        return self._stop_began is not None

    def begin_stop(self) -> None:
        """Stop taking new messages (idempotent, returns at once; call it from the event loop,
        e.g. at SIGTERM): every consumer ends its fetch loop after the pull in progress; the
        handlers in flight go on. The grace of :meth:`quiesce` counts from the first call."""
        if self._stop_began is None:
            self._stop_began = asyncio.get_running_loop().time()
        for consumer in self._consumers:
            consumer.stop_fetching()

    async def quiesce(self, grace: float) -> None:
        """Stop taking new messages and queries; let the handlers in flight run until ``grace``
        seconds after :meth:`begin_stop` (acked, or nak'ed on failure, as usual); then hand back
        what is still unfinished: those handlers are cancelled and their messages nak'ed with
        no delay, so another replica takes them at once rather than after the ack wait."""
        self.begin_stop()
        assert self._stop_began is not None
        loop = asyncio.get_running_loop()
        deadline = self._stop_began + grace
        # Query responders: leave the queue group, so other replicas answer the next requests;
        # those received already are answered.
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(cast(Any, sub).drain(), DRAIN_TIMEOUT_SECONDS)  # untyped in nats-py
        # A fetch loop ends within one pull (its messages are handled like the others), even
        # when the grace is shorter: what a pull brings after we stopped waiting would wait
        # out the ack wait.
        fetching = [c.fetch_loop for c in self._consumers if c.fetch_loop is not None]
        if fetching:
            await asyncio.wait(fetching, timeout=max(deadline - loop.time(), FETCH_ONE_SECONDS + 0.5))
        busy: set[asyncio.Task[None]] = set(self._answers)
        for consumer in self._consumers:
            busy |= consumer.in_flight
        remaining = deadline - loop.time()
        if busy and remaining > 0:
            await asyncio.wait(busy, timeout=remaining)
        for consumer in self._consumers:
            await consumer.hand_back()

    async def close(self) -> None:
        """Stop consumers and responders, then close the connection.

        Handlers still running are handed back (cancelled, their messages nak'ed), so
        JetStream redelivers them to another replica at once; for a graceful stop call
        :meth:`quiesce` first. Draining is bounded, as a pull subscription cancelled mid-fetch
        never finishes draining on its own.
        """
        self.begin_stop()
        for consumer in self._consumers:
            if consumer.fetch_loop is not None:
                consumer.fetch_loop.cancel()
            await consumer.hand_back()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self.nc.drain(), DRAIN_TIMEOUT_SECONDS)
        except Exception:
            with contextlib.suppress(Exception):
                await self.nc.close()

    # ---------------------------------------------------------------- streams

    async def ensure_streams(
        self, streams: Sequence[StreamSpec] = STREAMS, *, replicas: int | None = None
    ) -> None:
        """Create or update the streams (idempotent; every service may call it at start).

        ``replicas`` defaults to ``PICTURE_STREAM_REPLICAS`` (1; 3 in production, which needs a
        JetStream cluster of at least 3 servers).
        """
        if replicas is None:
            replicas = int(os.environ.get("PICTURE_STREAM_REPLICAS", "1") or "1")
        for spec in streams:
            config = StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
                max_age=spec.max_age_seconds,
                duplicate_window=spec.duplicate_window_seconds,
                num_replicas=replicas,
            )
            try:
                await self.js.add_stream(config)
            except nats.js.errors.BadRequestError:
                await self.js.update_stream(config)

    # ---------------------------------------------------------------- publish

    async def publish(
        self,
        channel: Channel[M],
        message: M,
        *,
        message_id: uuid.UUID | None = None,
        **tokens: object,
    ) -> uuid.UUID:
        """Publish to JetStream and wait for the stream's ack. Returns the envelope id."""
        envelope = Envelope.wrap(message, id=message_id)
        await self.publish_envelope(channel.subject(**tokens), envelope)
        return envelope.id

    async def publish_envelope(self, subject: str, envelope: Envelope) -> None:
        await self.publish_payload(subject, envelope.id, envelope.type, envelope.model_dump_json().encode())

    async def publish_payload(self, subject: str, message_id: uuid.UUID, type_: str, payload: bytes) -> None:
        """Publish an envelope already serialised (``payload``), e.g. an outbox row."""
        with tracer.start_as_current_span(f"publish {type_}", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            span.set_attribute("messaging.message.id", str(message_id))
            await self.js.publish(subject, payload, headers=_trace_headers({"Nats-Msg-Id": str(message_id)}))

    # ---------------------------------------------------------------- queries

    async def request(
        self,
        query: Query[M, R],
        message: M,
        timeout: float | None = None,  # noqa: ASYNC109 - the NATS request's own deadline
    ) -> R:
        envelope = Envelope.wrap(message)
        with tracer.start_as_current_span(f"request {query.subject}", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("messaging.destination.name", query.subject)
            try:
                msg = await self.nc.request(
                    query.subject,
                    envelope.model_dump_json().encode(),
                    timeout=timeout or self.query_timeout,
                    headers=_trace_headers(),
                )
            except nats.errors.NoRespondersError as exc:
                raise QueryFailed(QueryErrorCode.UNAVAILABLE, f"no service answers {query.subject}") from exc
            except (TimeoutError, nats.errors.TimeoutError) as exc:
                raise QueryFailed(
                    QueryErrorCode.UNAVAILABLE, f"{query.subject} did not answer in time"
                ) from exc
        reply = QueryReply.model_validate_json(msg.data)
        if not reply.ok or reply.data is None:
            error = reply.error or QueryError(code=QueryErrorCode.INTERNAL, message="empty reply")
            raise QueryFailed(error.code, error.message, error.field)
        return query.reply_type.model_validate(reply.data)

    async def serve(
        self,
        query: Query[M, R],
        handler: Callable[[M], Awaitable[R]],
        *,
        max_concurrency: int = 256,
    ) -> None:
        """Answer a query in this service's queue group (replicas share the load)."""
        limit = asyncio.Semaphore(max_concurrency)

        async def answer(msg: Msg) -> None:
            started = time.perf_counter()
            outcome = "ok"
            ctx = propagate.extract(msg.headers or {})
            token = otel_context.attach(ctx)
            try:
                with tracer.start_as_current_span(f"serve {query.subject}", kind=trace.SpanKind.SERVER):
                    try:
                        request: M = Envelope.decode(msg.data).open(query.request_type)
                        result = await handler(request)
                        reply = QueryReply(ok=True, data=result.model_dump(mode="json"))
                    except QueryFailed as exc:
                        outcome = exc.code.value
                        reply = QueryReply(ok=False, error=exc.to_error())
                    except (ValidationError, ValueError) as exc:
                        outcome = "invalid"
                        reply = QueryReply(
                            ok=False,
                            error=QueryError(
                                code=QueryErrorCode.INVALID, message=str(exc)[:500], field=_invalid_field(exc)
                            ),
                        )
                    except Exception:
                        outcome = "internal"
                        log.exception("query %s failed", query.subject)
                        reply = QueryReply(
                            ok=False,
                            error=QueryError(code=QueryErrorCode.INTERNAL, message="internal error"),
                        )
                    if msg.reply:
                        await msg.respond(reply.model_dump_json().encode())
            finally:
                otel_context.detach(token)
                limit.release()
                QUERY_DURATION.labels(query.subject, outcome).observe(time.perf_counter() - started)

        async def on_message(msg: Msg) -> None:
            await limit.acquire()
            task = self._spawn(answer(msg))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

        sub = await self.nc.subscribe(query.subject, queue=self.service, cb=on_message)
        self._subscriptions.append(sub)

    # ---------------------------------------------------------------- consumers

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start_consumer(
        self,
        stream: StreamSpec,
        durable: str,
        routes: Sequence[Route[Any]],
        *,
        options: ConsumerOptions | None = None,
        on_poison: PoisonHook | None = None,
    ) -> Consumer:
        consumer = Consumer(self, stream, durable, routes, options or ConsumerOptions(), on_poison)
        await consumer.bind()
        self._consumers.append(consumer)
        consumer.fetch_loop = self._spawn(consumer.run())
        if self.stopping:
            consumer.stop_fetching()
        return consumer

    async def start_declared(
        self,
        spec: ConsumerSpec,
        routes: Sequence[Route[Any]],
        *,
        on_poison: PoisonHook | None = None,
        **overrides: Any,
    ) -> Consumer:
        """:meth:`start_consumer` with the declared settings of ``spec`` (``overrides``:
        :class:`ConsumerOptions` fields this process sets itself)."""
        return await self.start_consumer(
            spec.stream,
            spec.durable,
            routes,
            options=ConsumerOptions.of(spec, **overrides),
            on_poison=on_poison,
        )


def _backlog(msg: Msg) -> int:
    """How many more messages the server held for the consumer when it delivered ``msg``."""
    try:
        return msg.metadata.num_pending or 0
    except nats.errors.NotJSMessageError:
        return 0


@dataclass
class Consumer:
    """A durable pull consumer that dispatches by message type to its routes."""

    bus: Bus
    stream: StreamSpec
    durable: str
    routes: Sequence[Route[Any]]
    options: ConsumerOptions
    on_poison: PoisonHook | None = None
    _by_type: dict[str, Route[Any]] = field(default_factory=dict)
    _sub: JetStreamContext.PullSubscription | None = None
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False
    fetch_loop: asyncio.Task[None] | None = None

    async def bind(self) -> None:
        self._by_type = {route.channel.message_type.TYPE: route for route in self.routes}
        subjects = sorted({route.channel.wildcard for route in self.routes})
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.options.ack_wait_seconds,
            max_deliver=self.options.max_deliver,
            max_ack_pending=self.options.max_ack_pending,
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
        )
        try:
            await self.bus.js.add_consumer(self.stream.name, config)
        except nats.js.errors.BadRequestError:
            # Exists with another config: keep it (changing filters of a live durable is an
            # operator decision), but say so.
            log.warning("consumer %s exists with a different config; using it", self.durable)
        self._sub = await self.bus.js.pull_subscribe_bind(self.durable, self.stream.name)

    @property
    def in_flight(self) -> set[asyncio.Task[None]]:
        """The handlers running now."""
        return set(self._in_flight)

    def stop_fetching(self) -> None:
        """End the fetch loop after the pull in progress (the handlers in flight go on)."""
        self._stopping = True

    async def run(self) -> None:
        assert self._sub is not None
        backlog = 0  # messages the server still held for this consumer at the last delivery
        while not self._stopping:
            free = self.options.max_in_flight - len(self._in_flight)
            if free <= 0:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            # A pull for N messages returns when N arrived or the pull expired, never sooner:
            # asked for more than the server holds, it held every message it got until expiry
            # (up to a second per hop). So: wait for one message at a time, and take a batch
            # only of what the server said it holds (a short expiry in case another replica
            # took some of them first).
            batch = min(free, backlog) if backlog > 0 else 1
            try:
                msgs = await self._sub.fetch(
                    batch=batch, timeout=FETCH_BATCH_SECONDS if batch > 1 else FETCH_ONE_SECONDS
                )
            except (TimeoutError, nats.errors.TimeoutError):
                backlog = 0
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: wait for the reconnect
                log.warning("consumer %s fetch failed: %s", self.durable, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                task = asyncio.ensure_future(self._handle(msg))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            backlog = _backlog(msgs[-1]) if msgs else 0

    async def hand_back(self) -> None:
        """Cancel the handlers still running (each naks its message, no delay) and nak what
        arrived for a pull after the fetch loop stopped: another replica takes them at once."""
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._sub is None or not self._stopping:
            return
        queue = self._sub._sub._pending_queue if self._sub._sub is not None else None
        while queue is not None and not queue.empty():
            msg = queue.get_nowait()
            if JetStreamContext.is_status_msg(msg):
                continue  # a pull's status (timeout, no messages), not a message
            CONSUMER_MESSAGES.labels(self.durable, "unknown", "handed_back").inc()
            with contextlib.suppress(Exception):
                await msg.nak()

    def _retry_delay(self, num_delivered: int) -> float:
        delays = self.options.retry_delays
        return delays[min(num_delivered, len(delays)) - 1] if delays else 1.0

    async def _dead_letter(self, msg: Msg, num_delivered: int, exc: BaseException) -> None:
        """Keep a copy of a message given up on in the dead-letter stream (best effort)."""
        original = msg.subject
        suffix = original.removeprefix("picture.") if original.startswith("picture.") else original
        sequence = msg.metadata.sequence.stream if msg.metadata and msg.metadata.sequence else 0
        headers = _trace_headers(
            {
                "Nats-Msg-Id": f"dlq:{self.durable}:{self.stream.name}:{sequence}",
                "Picture-Original-Subject": original,
                "Picture-Consumer": self.durable,
                "Picture-Num-Delivered": str(num_delivered),
                "Picture-Error": f"{type(exc).__name__}: {exc}"[:500].replace("\r", " ").replace("\n", " "),
            }
        )
        try:
            await self.bus.js.publish(f"{DLQ_SUBJECT_PREFIX}.{suffix}", msg.data, headers=headers)
            DEAD_LETTERS.labels(self.durable).inc()
        except Exception as dlq_exc:
            log.error(
                "consumer %s: dead-lettering a message of %s failed: %s", self.durable, original, dlq_exc
            )

    async def _handle(self, msg: Msg) -> None:
        num_delivered = msg.metadata.num_delivered if msg.metadata else 1
        if num_delivered > 1:
            CONSUMER_REDELIVERIES.labels(self.durable).inc()
        try:
            envelope = Envelope.decode(msg.data)
            route = self._by_type[envelope.type]
            message: Message = envelope.open(route.channel.message_type)
        except (ValidationError, ValueError, KeyError) as exc:
            log.error("consumer %s: undecodable message on %s: %s", self.durable, msg.subject, exc)
            CONSUMER_MESSAGES.labels(self.durable, "unknown", "term").inc()
            await self._dead_letter(msg, num_delivered, exc)
            await msg.term()
            return
        delivery: Delivery[Any] = Delivery(message, envelope, msg.subject, num_delivered, msg)
        started = time.perf_counter()
        ctx = propagate.extract(msg.headers or {})
        token = otel_context.attach(ctx)
        outcome = "ack"
        try:
            with tracer.start_as_current_span(
                f"process {envelope.type}", kind=trace.SpanKind.CONSUMER
            ) as span:
                span.set_attribute("messaging.system", "nats")
                span.set_attribute("messaging.destination.name", msg.subject)
                span.set_attribute("messaging.message.id", str(envelope.id))
                span.set_attribute("messaging.consumer.group.name", self.durable)
                try:
                    try:
                        await route.handler(delivery)
                    except asyncio.CancelledError:
                        # Stopping: hand the message back now, not after the ack wait.
                        outcome = "handed_back"
                        log.info("consumer %s: %s handed back (stopping)", self.durable, envelope.type)
                        with contextlib.suppress(Exception):
                            await msg.nak()
                        raise
                    await msg.ack()
                except Reject as exc:
                    outcome = "term"
                    log.error("consumer %s rejected %s: %s", self.durable, envelope.type, exc)
                    await msg.term()
                except Exception as exc:
                    if num_delivered >= self.options.max_deliver:
                        outcome = "poison"
                        log.error(
                            "consumer %s: %s failed on its last delivery (%d): %s",
                            self.durable,
                            envelope.type,
                            num_delivered,
                            exc,
                        )
                        if self.on_poison is not None:
                            await self.on_poison(delivery, exc)
                        await self._dead_letter(msg, num_delivered, exc)
                        await msg.term()
                    else:
                        outcome = "nak"
                        delay = exc.delay if isinstance(exc, Retry) and exc.delay else None
                        delay = delay if delay is not None else self._retry_delay(num_delivered)
                        level = logging.INFO if isinstance(exc, Retry) else logging.WARNING
                        log.log(
                            level,
                            "consumer %s: %s will be redelivered in %.1fs: %s",
                            self.durable,
                            envelope.type,
                            delay,
                            exc,
                            exc_info=not isinstance(exc, Retry),
                        )
                        await msg.nak(delay=delay)
        except Exception:
            outcome = "error"
            log.exception("consumer %s: settling %s failed", self.durable, envelope.type)
        finally:
            otel_context.detach(token)
            CONSUMER_MESSAGES.labels(self.durable, envelope.type, outcome).inc()
            CONSUMER_DURATION.labels(self.durable, envelope.type).observe(time.perf_counter() - started)
