"""Transactional outbox, for any service that must announce its own state changes.

A message is a row written in the same transaction as the change it announces (:func:`enqueue`);
:class:`OutboxRelay` publishes due rows to JetStream with Nats-Msg-Id = row id and marks them.
A crash between commit and publish therefore loses nothing; a row published twice (crash after
publish, before marking) is dropped by JetStream's duplicate window, and consumers stay
idempotent past it. ``available_at`` delays a message (retries); ``trace_context`` keeps the
writer's W3C trace context so one trace spans the relay hop.

Each service keeps the table in its own schema: ``outbox = outbox_table(metadata)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Counter, Gauge
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Uuid, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.common.contracts import Channel, Envelope, M
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
        Column("envelope", JSONB, nullable=False),
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


def outbox_message(
    channel: Channel[M],
    message: M,
    *,
    delay_seconds: float = 0.0,
    trace_context: dict[str, str] | None = None,
    **tokens: object,
) -> OutboxMessage:
    """Wrap ``message`` for :func:`enqueue_all`, in ``trace_context`` (W3C headers kept from
    the request the message continues) or else the current trace context, captured now."""
    if trace_context is None:
        trace_context = {}
        propagate.inject(trace_context)
    return OutboxMessage(channel.subject(**tokens), Envelope.wrap(message), trace_context, delay_seconds)


async def enqueue_all(conn: AsyncConnection, outbox: Table, messages: Sequence[OutboxMessage]) -> None:
    """Add messages to ``outbox`` inside the caller's transaction, in one statement."""
    if not messages:
        return
    now = datetime.now(UTC)
    await conn.execute(
        outbox.insert(),  # executemany form: compiled once, cached
        [
            {
                "id": m.envelope.id,
                "subject": m.subject,
                "envelope": m.envelope.model_dump(mode="json"),
                "trace_context": m.trace_context,
                "created_at": now,
                "available_at": now + timedelta(seconds=m.delay_seconds),
            }
            for m in messages
        ],
    )


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
    pending = outbox_message(channel, message, delay_seconds=delay_seconds, trace_context=None, **tokens)
    await enqueue_all(conn, outbox, [pending])
    return pending.envelope


class OutboxRelay:
    """Publishes due rows of one outbox; woken by :meth:`notify` after local commits, else polls."""

    def __init__(
        self, engine: AsyncEngine, bus: Bus, outbox: Table, batch_size: int = 200, idle_seconds: float = 0.5
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.outbox = outbox
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self._wake = asyncio.Event()

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before the round: a commit during it wakes the next one
            try:
                relayed = await self.relay_once()
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

    async def relay_once(self) -> int:
        outbox = self.outbox
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.subject, outbox.c.envelope, outbox.c.trace_context)
                    .where(outbox.c.published_at.is_(None), outbox.c.available_at <= func.now())
                    .order_by(outbox.c.available_at, outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            OUTBOX_PENDING.set(len(rows))
            if not rows:
                return 0
            for row in rows:
                envelope = Envelope.model_validate(row.envelope)
                token = otel_context.attach(propagate.extract(row.trace_context or {}))
                try:
                    await self.bus.publish_envelope(row.subject, envelope)
                finally:
                    otel_context.detach(token)
                OUTBOX_PUBLISHED.labels(envelope.type).inc()
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
        return len(rows)
