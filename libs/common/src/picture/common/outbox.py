"""Transactional outbox, for any service that must announce its own state changes.

A message is a row written in the same transaction as the change it announces (:func:`enqueue`)
and published to JetStream with Nats-Msg-Id = row id. The row holds the exact bytes that go on
the wire, serialised once.

Two ways out, one guarantee:

- after a commit made through :meth:`OutboxRelay.transaction`, the relay publishes that
  transaction's messages at once from memory (no read back, no second serialisation) and
  marks their rows published, many rows per statement;
- a poll publishes what the fast way did not: delayed messages (retries) when they fall due,
  and rows left behind by a crash or a NATS outage after ``grace_seconds``.

So a crash between commit and publish loses nothing; a row published twice (both ways, or a
crash after publish before marking) is dropped by JetStream's duplicate window, and consumers
stay idempotent past it. ``trace_context`` keeps the writer's W3C trace context so one trace
spans the relay hop. Published rows are deleted after ``retention_seconds``.

Each service keeps the table in its own schema: ``outbox = outbox_table(metadata)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Counter, Gauge
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.common.contracts import Channel, Envelope, M
from picture.common.database import autocommit
from picture.common.messaging import Bus

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter("picture_outbox_published_total", "Outbox rows relayed to JetStream.", ["type"])
OUTBOX_PENDING = Gauge(
    "picture_outbox_pending", "Outbox rows due and not yet relayed (sampled by the relay)."
)


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table in the schema of ``metadata``."""
    return Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),  # the envelope as it goes on the wire
        Column("trace_context", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_pending", "available_at", postgresql_where=text("published_at IS NULL")),
    )


@dataclass(frozen=True)
class OutboxMessage:
    """A message bound for an outbox, with the trace context it was created in."""

    subject: str
    envelope: Envelope
    trace_context: dict[str, str]
    delay_seconds: float = 0.0
    payload: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", self.envelope.model_dump_json().encode())  # frozen: once

    @property
    def id(self) -> uuid.UUID:
        return self.envelope.id


# The messages enqueued inside the current OutboxRelay.transaction(), for the fast way out.
_COMMITTING: contextvars.ContextVar[tuple[Table, list[OutboxMessage]] | None] = contextvars.ContextVar(
    "picture_outbox_committing", default=None
)


def _current_trace_context() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def outbox_message(
    channel: Channel[M],
    message: M,
    *,
    delay_seconds: float = 0.0,
    trace_context: dict[str, str] | None = None,
    message_id: uuid.UUID | None = None,
    **tokens: object,
) -> OutboxMessage:
    """Wrap ``message`` for :func:`enqueue_all`, in ``trace_context`` (W3C headers kept from
    the request the message continues) or else the current trace context, captured now."""
    if trace_context is None:
        trace_context = _current_trace_context()
    envelope = Envelope.wrap(message, id=message_id)
    return OutboxMessage(channel.subject(**tokens), envelope, trace_context, delay_seconds)


async def enqueue_all(conn: AsyncConnection, outbox: Table, messages: Sequence[OutboxMessage]) -> None:
    """Add messages to ``outbox`` inside the caller's transaction, in one statement. Inside
    :meth:`OutboxRelay.transaction`, the ones without delay are published right after commit."""
    if not messages:
        return
    now = datetime.now(UTC)
    await conn.execute(
        outbox.insert(),  # executemany form: compiled once, cached
        [
            {
                "id": m.id,
                "subject": m.subject,
                "payload": m.payload,
                "trace_context": m.trace_context,
                "created_at": now,
                "available_at": now + timedelta(seconds=m.delay_seconds),
            }
            for m in messages
        ],
    )
    committing = _COMMITTING.get()
    if committing is not None and committing[0] is outbox:
        committing[1].extend(m for m in messages if m.delay_seconds <= 0)


async def enqueue(
    conn: AsyncConnection,
    outbox: Table,
    channel: Channel[M],
    message: M,
    *,
    delay_seconds: float = 0.0,
    **tokens: object,
) -> Envelope:
    """Add a message to ``outbox`` inside the caller's transaction."""
    subject = channel.subject(**tokens)
    pending = OutboxMessage(subject, Envelope.wrap(message), _current_trace_context(), delay_seconds)
    await enqueue_all(conn, outbox, [pending])
    return pending.envelope


class OutboxRelay:
    """Publishes one outbox: right after commits made through :meth:`transaction`, and by a
    poll (every ``idle_seconds``, or when :meth:`notify` wakes it) for the rest."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        outbox: Table,
        batch_size: int = 200,
        idle_seconds: float = 0.5,
        *,
        grace_seconds: float = 5.0,
        retention_seconds: float = 86400.0,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.outbox = outbox
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.grace_seconds = grace_seconds
        self.retention_seconds = retention_seconds
        self._single_statements = autocommit(engine)
        self._wake = asyncio.Event()
        self._fresh = False
        self._committed: list[OutboxMessage] = []
        self._committed_ready = asyncio.Event()

    def notify(self) -> None:
        """After a commit made outside :meth:`transaction`: wake the poll, and let it take rows
        younger than the grace period too."""
        self._fresh = True
        self._wake.set()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """``engine.begin()`` whose enqueued messages are published as soon as it commits."""
        committing: list[OutboxMessage] = []
        token = _COMMITTING.set((self.outbox, committing))
        try:
            async with self.engine.begin() as conn:
                yield conn
        finally:
            _COMMITTING.reset(token)
        if committing:  # reached only after a commit
            self.committed(committing)

    def committed(self, messages: Sequence[OutboxMessage]) -> None:
        """Publish now the messages whose rows a commit has just written (made through
        :meth:`transaction`, or one statement that inserted the rows itself)."""
        self._committed.extend(messages)
        self._committed_ready.set()

    async def run(self) -> None:
        """The fast way and the poll, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._publish_committed(), name="outbox-fast")
            group.create_task(self._poll(), name="outbox-poll")

    async def _publish_committed(self) -> None:
        while True:
            await self._committed_ready.wait()
            self._committed_ready.clear()
            while self._committed:
                size = self.batch_size
                batch, self._committed = self._committed[:size], self._committed[size:]
                try:
                    await self._publish(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the poll takes them after the grace period
                    log.warning("outbox: publishing %d committed messages failed: %s", len(batch), exc)

    async def _publish(self, batch: Sequence[OutboxMessage]) -> None:
        """Publish concurrently (the PUBs leave in order; their acks are awaited together),
        then mark what JetStream acknowledged in one statement."""
        results = await asyncio.gather(
            *(self._publish_one(m.subject, m.id, m.envelope.type, m.payload, m.trace_context) for m in batch),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        done = [m.id for m, r in zip(batch, results, strict=True) if not isinstance(r, BaseException)]
        if done:
            async with self._single_statements.connect() as conn:
                await conn.execute(
                    update(self.outbox).where(self.outbox.c.id.in_(done)).values(published_at=func.now())
                )
        if failed:
            raise failed[0]

    async def _publish_one(
        self, subject: str, message_id: uuid.UUID, type_: str, payload: bytes, trace_context: dict[str, str]
    ) -> None:
        token = otel_context.attach(propagate.extract(trace_context or {}))
        try:
            await self.bus.publish_payload(subject, message_id, type_, payload)
        finally:
            otel_context.detach(token)
        OUTBOX_PUBLISHED.labels(type_).inc()

    async def _poll(self) -> None:
        next_cleanup = time.monotonic() + min(600.0, self.retention_seconds)
        while True:
            self._wake.clear()  # before the round: a wake during it runs the next one
            fresh, self._fresh = self._fresh, False
            try:
                relayed = await self.relay_once(include_fresh=fresh)
                if time.monotonic() >= next_cleanup:
                    next_cleanup = time.monotonic() + min(600.0, self.retention_seconds)
                    await self.delete_published()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or PostgreSQL away: try again shortly
                log.warning("outbox relay round failed: %s", exc)
                relayed = 0
                await asyncio.sleep(1.0)
            if relayed >= self.batch_size:
                continue  # more are due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    async def relay_once(self, *, include_fresh: bool = False) -> int:
        """Publish the rows the fast way did not: due delayed ones, and any older than the
        grace period (a crash or an outage between commit and publish), or every due row when
        ``include_fresh``."""
        outbox = self.outbox
        grace = timedelta(seconds=0 if include_fresh else self.grace_seconds)
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.subject, outbox.c.payload, outbox.c.trace_context)
                    .where(
                        outbox.c.published_at.is_(None),
                        outbox.c.available_at <= func.now(),
                        or_(
                            outbox.c.available_at > outbox.c.created_at,
                            outbox.c.created_at <= func.now() - grace,
                        ),
                    )
                    .order_by(outbox.c.available_at, outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            OUTBOX_PENDING.set(len(rows))
            if not rows:
                return 0
            for row in rows:
                payload = bytes(row.payload)
                type_ = Envelope.model_validate_json(payload).type
                await self._publish_one(row.subject, row.id, type_, payload, row.trace_context)
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
        return len(rows)

    async def delete_published(self) -> int:
        """Forget rows published more than ``retention_seconds`` ago."""
        async with self._single_statements.connect() as conn:
            result = await conn.execute(
                delete(self.outbox).where(
                    self.outbox.c.published_at < func.now() - timedelta(seconds=self.retention_seconds)
                )
            )
        return int(result.rowcount or 0)


def migrate_envelope_to_payload(schema: str) -> list[str]:
    """SQL of the migration from a JSONB ``envelope`` column to the wire bytes in ``payload``
    (each service's outbox migration runs it for its own schema; rows not yet published keep
    their message)."""
    return [
        f"ALTER TABLE {schema}.outbox ADD COLUMN payload bytea",
        f"UPDATE {schema}.outbox SET payload = convert_to(envelope::text, 'UTF8')",  # noqa: S608 - our schema name
        f"ALTER TABLE {schema}.outbox ALTER COLUMN payload SET NOT NULL",
        f"ALTER TABLE {schema}.outbox DROP COLUMN envelope",
    ]


def migrate_payload_to_envelope(schema: str) -> list[str]:
    """The reverse of :func:`migrate_envelope_to_payload`."""
    return [
        f"ALTER TABLE {schema}.outbox ADD COLUMN envelope jsonb",
        f"UPDATE {schema}.outbox SET envelope = convert_from(payload, 'UTF8')::jsonb",  # noqa: S608 - our schema name
        f"ALTER TABLE {schema}.outbox ALTER COLUMN envelope SET NOT NULL",
        f"ALTER TABLE {schema}.outbox DROP COLUMN payload",
    ]
