"""Account deletion: the adapter deletes the user's prediction records (their inputs hold the
user's prompts). Handling the event twice deletes nothing more."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.messaging import Delivery
from picture.replicate_adapter.tables import predictions


async def on_account_deleted(engine: AsyncEngine, delivery: Delivery[c.AccountDeletedEvent]) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(predictions).where(predictions.c.user_id == delivery.message.user_id))
