"""Account deletion: media deletes every object the user owns (generated images, uploads,
imported ones: whatever ``owner_id`` says) from storage, then their rows. Handling the event
twice deletes nothing more; a failure midway is retried by redelivery and finishes the rest."""

from __future__ import annotations

from sqlalchemy import delete, select

from picture.common import contracts as c
from picture.common.messaging import Delivery
from picture.media.handlers import MediaContext
from picture.media.tables import stored_objects


async def on_account_deleted(ctx: MediaContext, delivery: Delivery[c.AccountDeletedEvent]) -> None:
    user = delivery.message.user_id
    async with ctx.engine.connect() as conn:
        keys = (
            (await conn.execute(select(stored_objects.c.key).where(stored_objects.c.owner_id == user)))
            .scalars()
            .all()
        )
    for key in keys:
        await ctx.storage.delete(key)  # idempotent: a missing object is no error
    async with ctx.engine.begin() as conn:
        await conn.execute(delete(stored_objects).where(stored_objects.c.owner_id == user))
