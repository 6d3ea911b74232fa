"""Transactional outbox: messages are rows written with the state change they announce, and a
relay publishes them to JetStream with Nats-Msg-Id = row id.

Why: a crash between "commit the state" and "publish the message" would otherwise lose the
message (or publish one for a state never committed). With the outbox both commit or neither
does; the relay may publish a row twice (crash after publish, before marking it), which
JetStream's duplicate window and idempotent consumers absorb.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.common.contracts import Channel, Envelope, M
from picture.common.messaging import Bus
from picture.orchestrator.tables import outbox

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter("picture_outbox_published_total", "Outbox rows relayed to JetStream.", ["type"])
OUTBOX_PENDING = Gauge(
    "picture_outbox_pending", "Outbox rows due and not yet relayed (sampled by the relay)."
)


async def enqueue(
    conn: AsyncConnection,
    channel: Channel[M],
    message: M,
    *,
    delay_seconds: float = 0.0,
    **tokens: object,
) -> Envelope:
    """Add a message to the outbox inside the caller's transaction."""
    envelope = Envelope.wrap(message)
    now = datetime.now(UTC)
    trace_context: dict[str, str] = {}
    propagate.inject(trace_context)
    await conn.execute(
        outbox.insert().values(
            id=envelope.id,
            subject=channel.subject(**tokens),
            envelope=envelope.model_dump(mode="json"),
            trace_context=trace_context,
            created_at=now,
            available_at=now + timedelta(seconds=delay_seconds),
        )
    )
    return envelope


class OutboxRelay:
    """Publishes due outbox rows; woken by :meth:`notify` after local commits, otherwise polls."""

    def __init__(self, engine: AsyncEngine, bus: Bus, batch_size: int, idle_seconds: float) -> None:
        self.engine = engine
        self.bus = bus
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
            if not rows:
                OUTBOX_PENDING.set(0)
                return 0
            OUTBOX_PENDING.set(len(rows))
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
