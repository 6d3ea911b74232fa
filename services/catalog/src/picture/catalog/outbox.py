"""The catalog's outbox (today: "delete these stored objects", written with the image rows'
delete): :mod:`picture.common.outbox` bound to ``catalog.outbox``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from picture.catalog.tables import outbox
from picture.common import outbox as common_outbox
from picture.common.contracts import Channel, Envelope, M
from picture.common.outbox import OutboxRelay

__all__ = ["OutboxRelay", "enqueue", "outbox"]


async def enqueue(conn: AsyncConnection, channel: Channel[M], message: M, **tokens: object) -> Envelope:
    """Add a message to the catalog's outbox inside the caller's transaction."""
    return await common_outbox.enqueue(conn, outbox, channel, message, delay_seconds=0.0, **tokens)
