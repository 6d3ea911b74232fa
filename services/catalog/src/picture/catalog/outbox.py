"""The catalog's transactional outbox: a message is a row written with the change it announces
(today: "delete these stored objects" with the image rows' delete), published after commit by
:class:`OutboxRelay` with Nats-Msg-Id = row id, so a re-publish after a crash is dropped by
JetStream's duplicate window (and media's delete is idempotent past it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.catalog.tables import outbox
from picture.common.contracts import Channel, Envelope, M
from picture.common.messaging import Bus

log = logging.getLogger(__name__)


async def enqueue(conn: AsyncConnection, channel: Channel[M], message: M, **tokens: object) -> Envelope:
    """Add a message to the outbox inside the caller's transaction."""
    envelope = Envelope.wrap(message)
    await conn.execute(
        outbox.insert().values(
            id=envelope.id, subject=channel.subject(**tokens), envelope=envelope.model_dump(mode="json")
        )
    )
    return envelope


class OutboxRelay:
    """Publishes pending rows; woken by :meth:`notify` after a local commit, otherwise polls."""

    def __init__(
        self, engine: AsyncEngine, bus: Bus, batch_size: int = 100, idle_seconds: float = 5.0
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self._wake = asyncio.Event()

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                relayed = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or PostgreSQL away: try again shortly
                log.warning("catalog outbox relay round failed: %s", exc)
                relayed = 0
                await asyncio.sleep(1.0)
            if relayed >= self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    async def relay_once(self) -> int:
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.subject, outbox.c.envelope)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.created_at, outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self.bus.publish_envelope(row.subject, Envelope.model_validate(row.envelope))
            if rows:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([row.id for row in rows]))
                    .values(published_at=func.now())
                )
        return len(rows)
