"""``DELETE /v1/me``: the user deletes their account and everything of theirs.

The gateway deletes its own rows of the user (generation views, idempotency keys, limits and
counters, charges, webhook subscriptions and deliveries) and, in the same transaction, puts
``account.deleted`` in its outbox; every other service deletes what it owns on that event
(catalog: images, likes, templates, profile; orchestrator: generations, batches; adapter:
predictions; media: the stored files). The answer (202) comes before they are done.

Refused (409) while a generation of the user is still running: its results would land after
the deletion. Cancel it or wait for it, then delete.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import delete, select

from picture.common import contracts as c
from picture.common.outbox import enqueue
from picture.common.problems import Problem
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import EngineDep
from picture.gateway.errors import Conflict
from picture.gateway.tables import (
    charges,
    generation_views,
    idempotency_keys,
    outbox,
    rate_counters,
    request_rates,
    users,
    webhook_deliveries,
    webhook_subscriptions,
)

router = APIRouter(prefix="/v1/me", tags=["me"])

TERMINAL = tuple(s.value for s in c.TERMINAL_STATUSES)


class AccountDeletion(BaseModel):
    user_id: uuid.UUID
    status: Literal["deleting"]


@router.delete(
    "",
    status_code=202,
    response_model=AccountDeletion,
    responses={
        401: {"model": Problem, "description": "Missing or invalid access token"},
        409: {"model": Problem, "description": "A generation of yours is still running"},
    },
    summary="Delete your account: every row and file of yours, in every service",
)
async def delete_account(user: CurrentUser, engine: EngineDep) -> AccountDeletion:
    me = user.user_id
    async with engine.begin() as conn:
        running = (
            await conn.execute(
                select(generation_views.c.id)
                .where(generation_views.c.user_id == me, generation_views.c.status.not_in(TERMINAL))
                .limit(1)
            )
        ).first()
        if running is not None:
            raise Conflict(f"generation {running.id} is still running: cancel it or wait, then delete")
        subscribed = select(webhook_subscriptions.c.generation_id).where(
            webhook_subscriptions.c.user_id == me
        )
        await conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.generation_id.in_(subscribed))
        )
        for table in (webhook_subscriptions, charges, rate_counters, idempotency_keys, generation_views):
            await conn.execute(delete(table).where(table.c.user_id == me))
        for table in (request_rates, users):
            await conn.execute(delete(table).where(table.c.user_id == me))
        await enqueue(
            conn,
            outbox,
            c.ACCOUNT_DELETED,
            c.AccountDeletedEvent(user_id=me, requested_at=datetime.now(UTC)),
            user_id=me,
        )
    return AccountDeletion(user_id=me, status="deleting")
