"""``GET /v1/me/export``: everything the services keep of the user, in one JSON document
(profile, generations, images with their tags and flags, prompt templates, batches).

``DELETE /v1/me``: the user deletes their account and everything of theirs.

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import delete, select

from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from picture.common.outbox import enqueue
from picture.common.problems import Problem
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import BackendDep, EngineDep
from picture.gateway.errors import Conflict, Unavailable
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


T = TypeVar("T")
PAGE = 100


class AccountExport(BaseModel):
    exported_at: datetime
    profile: c.ProfileView
    generations: list[c.GenerationView]
    images: list[c.ImageDetail]
    prompt_templates: list[c.TemplateView]
    batches: list[c.BatchView]


async def _all_pages(fetch: Callable[[str | None], Awaitable[tuple[tuple[T, ...], str | None]]]) -> list[T]:
    found: list[T] = []
    cursor: str | None = None
    while True:
        page, cursor = await fetch(cursor)
        found += page
        if cursor is None:
            return found


@router.get(
    "/export",
    response_model=AccountExport,
    responses={
        401: {"model": Problem, "description": "Missing or invalid access token"},
        503: {"model": Problem, "description": "A backing service is unavailable; retry"},
    },
    summary="Everything kept of you, in one document",
)
async def export_account(user: CurrentUser, backend: BackendDep) -> AccountExport:
    me, bus = user.user_id, backend.bus

    async def generations(cursor: str | None) -> tuple[tuple[c.GenerationView, ...], str | None]:
        reply = await bus.request(
            c.LIST_GENERATIONS, c.ListGenerationsRequest(user_id=me, limit=PAGE, cursor=cursor)
        )
        return reply.generations, reply.next_cursor

    def images(
        archived: bool,
    ) -> Callable[[str | None], Awaitable[tuple[tuple[c.ImageDetail, ...], str | None]]]:
        async def fetch(cursor: str | None) -> tuple[tuple[c.ImageDetail, ...], str | None]:
            request = c.ListImagesRequest(user_id=me, archived=archived, limit=PAGE, cursor=cursor)
            reply = await bus.request(c.LIST_IMAGES, request)
            return reply.images, reply.next_cursor

        return fetch

    async def templates(cursor: str | None) -> tuple[tuple[c.TemplateView, ...], str | None]:
        request = c.ListTemplatesRequest(user_id=me, scope="own", limit=PAGE, cursor=cursor)
        reply = await bus.request(c.LIST_TEMPLATES, request)
        return reply.templates, reply.next_cursor

    async def batches(cursor: str | None) -> tuple[tuple[c.BatchView, ...], str | None]:
        reply = await bus.request(c.LIST_BATCHES, c.ListBatchesRequest(user_id=me, limit=PAGE, cursor=cursor))
        return reply.batches, reply.next_cursor

    try:
        profile = (
            await bus.request(c.GET_PROFILE, c.GetProfileRequest(user_id=me, email=user.email))
        ).profile
        found: dict[str, Any] = {
            "generations": await _all_pages(generations),
            "images": await _all_pages(images(False)) + await _all_pages(images(True)),
            "prompt_templates": await _all_pages(templates),
            "batches": await _all_pages(batches),
        }
    except QueryFailed as exc:
        raise Unavailable(f"the export could not be gathered ({exc.message}); try again") from exc
    return AccountExport(exported_at=datetime.now(UTC), profile=profile, **found)


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
