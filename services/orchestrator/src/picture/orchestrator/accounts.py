"""Account deletion: the orchestrator deletes the user's generations (their history, errors and
figures go with them) and batches. The gateway refuses the deletion while a generation of the
user is still running, so no event of theirs is in flight; a late one finds no generation and is
ignored. Handling the event twice deletes nothing more."""

from __future__ import annotations

from sqlalchemy import delete

from picture.common import contracts as c
from picture.common.messaging import Delivery
from picture.orchestrator.context import Context
from picture.orchestrator.tables import batches, generation_errors, generation_performance, generations


async def on_account_deleted(ctx: Context, delivery: Delivery[c.AccountDeletedEvent]) -> None:
    user = delivery.message.user_id
    async with ctx.engine.begin() as conn:
        await conn.execute(delete(generation_errors).where(generation_errors.c.user_id == user))
        await conn.execute(delete(generation_performance).where(generation_performance.c.user_id == user))
        await conn.execute(delete(generations).where(generations.c.user_id == user))
        await conn.execute(delete(batches).where(batches.c.user_id == user))
