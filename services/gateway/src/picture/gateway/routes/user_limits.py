"""``PUT /v1/admin/users/{user_id}/limits``: an administrator sets one user's own limits (the
old product kept per-user limits; ``picture-import`` brings them over through here). A field
left out (or null) keeps the user's current value; the answer says whether anything changed.
The gateway's limiter caches a user's limits for up to 30 s.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from picture.common.problems import Problem
from picture.gateway.deps import AdminUser, EngineDep
from picture.gateway.tables import users

router = APIRouter(prefix="/v1/admin/users", tags=["admin"])

LIMITS = ("hourly_limit", "daily_limit", "max_concurrent")


class UserLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hourly_limit: int | None = Field(default=None, ge=0, le=1_000_000)
    daily_limit: int | None = Field(default=None, ge=0, le=1_000_000)
    max_concurrent: int | None = Field(default=None, ge=0, le=10_000)


class UserLimitsOut(BaseModel):
    user_id: uuid.UUID
    hourly_limit: int | None
    daily_limit: int | None
    max_concurrent: int | None
    changed: bool


@router.put(
    "/{user_id}/limits",
    response_model=UserLimitsOut,
    responses={
        401: {"model": Problem, "description": "Missing or invalid access token"},
        403: {"model": Problem, "description": "Administrators only"},
        422: {"model": Problem, "description": "Invalid request; `field` names the culprit"},
    },
    summary="Set one user's own limits (administrators)",
)
async def set_user_limits(
    user_id: uuid.UUID, body: UserLimitsIn, admin: AdminUser, engine: EngineDep
) -> UserLimitsOut:
    values = {name: getattr(body, name) for name in LIMITS if getattr(body, name) is not None}
    async with engine.begin() as conn:
        before = (
            await conn.execute(select(*(users.c[n] for n in LIMITS)).where(users.c.user_id == user_id))
        ).first()
        if values:
            statement = insert(users).values(user_id=user_id, **values)
            await conn.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))
        after = (
            await conn.execute(select(*(users.c[n] for n in LIMITS)).where(users.c.user_id == user_id))
        ).first()
    now = dict(after._mapping) if after is not None else dict.fromkeys(LIMITS)
    was = dict(before._mapping) if before is not None else None
    return UserLimitsOut(user_id=user_id, changed=was != now if values else False, **now)
