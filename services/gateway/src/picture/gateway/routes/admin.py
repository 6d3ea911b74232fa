"""Admin endpoints (:data:`picture.gateway.deps.AdminUser`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from picture.common import contracts as c
from picture.common.problems import Problem
from picture.gateway.deps import AdminUser, BackendDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class Count(BaseModel):
    key: str
    count: int


class ErrorStatsOut(BaseModel):
    since: datetime
    until: datetime
    total: int
    by_type: list[Count]
    by_model: list[Count]
    by_day: list[Count]


def _group(rows: tuple[c.ErrorStatsRow, ...], attr: str) -> list[Count]:
    totals: dict[str, int] = {}
    for row in rows:
        key = str(getattr(row, attr))
        totals[key] = totals.get(key, 0) + row.count
    return [Count(key=k, count=v) for k, v in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]


@router.get(
    "/errors/stats",
    response_model=ErrorStatsOut,
    responses={
        401: {"model": Problem, "description": "Missing or invalid access token"},
        403: {"model": Problem, "description": "Not an admin"},
        503: {"model": Problem, "description": "The orchestrator is unavailable; retry"},
    },
    summary="Generation errors of the last N days by type, model and day (admins)",
)
async def error_stats(
    user: AdminUser,
    backend: BackendDep,
    days: Annotated[int, Query(ge=1, le=90)] = 7,
) -> ErrorStatsOut:
    until = datetime.now(UTC)
    reply = await backend.ask(
        c.ERROR_STATS,
        c.ErrorStatsRequest(since=until - timedelta(days=days), until=until),
        "error statistics",
    )
    return ErrorStatsOut(
        since=reply.since,
        until=reply.until,
        total=reply.total,
        by_type=_group(reply.rows, "error_type"),
        by_model=_group(reply.rows, "model"),
        by_day=_group(reply.rows, "day"),
    )
