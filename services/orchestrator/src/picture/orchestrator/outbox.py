"""The orchestrator's outbox: :mod:`picture.common.outbox` bound to ``orchestrator.outbox``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from picture.common import outbox as common_outbox
from picture.common.contracts import Channel, Envelope, M
from picture.common.outbox import OutboxMessage, OutboxRelay, outbox_message
from picture.orchestrator.tables import outbox

__all__ = ["OutboxMessage", "OutboxRelay", "enqueue", "enqueue_all", "outbox", "outbox_message"]


async def enqueue(
    conn: AsyncConnection, channel: Channel[M], message: M, *, delay_seconds: float = 0.0, **tokens: object
) -> Envelope:
    """Add a message to the orchestrator's outbox inside the caller's transaction."""
    return await common_outbox.enqueue(conn, outbox, channel, message, delay_seconds=delay_seconds, **tokens)


async def enqueue_all(conn: AsyncConnection, messages: list[OutboxMessage]) -> None:
    """Add several messages to the orchestrator's outbox in one statement."""
    await common_outbox.enqueue_all(conn, outbox, messages)
