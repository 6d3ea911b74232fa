"""GET /v1/me, PATCH /v1/me, GET /v1/me/limits.

Profiles belong to the catalog (docs/adr/0008-gateway-limits-and-profiles.md): the gateway asks
it over NATS; limits are the gateway's own.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from picture.common import contracts as c
from picture.common.problems import Problem
from picture.common.text import Storable
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import BackendDep, LimiterDep
from picture.gateway.errors import InvalidField

router = APIRouter(prefix="/v1/me", tags=["me"])
USERNAME = r"^[A-Za-z0-9_.\-]+$"

RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Missing or invalid access token"},
    409: {"model": Problem, "description": "Username taken (`field`: username)"},
    422: {"model": Problem, "description": "Invalid request; `field` names the culprit"},
    429: {"model": Problem, "description": "Request rate limit; see Retry-After"},
    503: {"model": Problem, "description": "A backing service is unavailable; retry"},
}


class MeOut(BaseModel):
    id: uuid.UUID
    email: str | None
    is_anonymous: bool
    username: str | None
    avatar_url: str | None
    created_at: datetime | None


class MeUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "ada_l", "avatar_url": "https://example.com/a.png"}]},
    )

    username: Annotated[str, Field(min_length=3, max_length=32, pattern=USERNAME), Storable] | None = None
    avatar_url: HttpUrl | None = Field(default=None, description='https URL; null keeps, "" is refused')
    clear_avatar: bool = False


class LimitsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "can_generate": True,
                    "limit_reason": None,
                    "daily_used": 3,
                    "daily_limit": 100,
                    "daily_reset_at": "2026-01-02T09:41:07Z",
                    "hourly_used": 3,
                    "hourly_limit": 20,
                    "hourly_reset_at": "2026-01-01T13:12:40Z",
                    "active_generations": 1,
                    "max_concurrent": 3,
                    "total_all_time": 42,
                }
            ]
        }
    )

    can_generate: bool
    limit_reason: str | None = Field(description="daily, hourly or concurrent; null when you can generate")
    daily_used: int = Field(description="Generations charged in the last 24 hours (a rolling window)")
    daily_limit: int
    daily_reset_at: datetime = Field(
        description="When the oldest of them leaves the 24 hours: one more becomes possible (now when none)"
    )
    hourly_used: int = Field(description="Generations charged in the last hour (a rolling window)")
    hourly_limit: int
    hourly_reset_at: datetime = Field(
        description="When the oldest of them leaves the hour: one more becomes possible (now when none)"
    )
    active_generations: int
    max_concurrent: int
    total_all_time: int


def _me(user: CurrentUser, profile: c.ProfileView) -> MeOut:
    return MeOut(
        id=user.user_id,
        email=profile.email or user.email,
        is_anonymous=user.is_anonymous,
        username=profile.username,
        avatar_url=profile.avatar_url,
        created_at=profile.created_at,
    )


@router.get("", response_model=MeOut, responses=RESPONSES, summary="Your profile")
async def get_me(user: CurrentUser, backend: BackendDep) -> MeOut:
    reply = await backend.ask(
        c.GET_PROFILE, c.GetProfileRequest(user_id=user.user_id, email=user.email), "profile"
    )
    return _me(user, reply.profile)


@router.patch("", response_model=MeOut, responses=RESPONSES, summary="Change your username or avatar")
async def patch_me(body: MeUpdate, user: CurrentUser, backend: BackendDep) -> MeOut:
    avatar = str(body.avatar_url) if body.avatar_url is not None else None
    if avatar is not None and not avatar.startswith("https://"):
        raise InvalidField("avatar_url", "avatar_url must be an https URL")
    if avatar is not None and len(avatar) > 1000:
        raise InvalidField("avatar_url", "avatar_url is too long")
    reply = await backend.ask(
        c.UPDATE_PROFILE,
        c.UpdateProfileRequest(
            user_id=user.user_id,
            username=body.username,
            avatar_url=avatar,
            clear_avatar=body.clear_avatar,
        ),
        "profile",
    )
    return _me(user, reply.profile)


@router.get("/limits", response_model=LimitsOut, responses=RESPONSES, summary="Your quotas and what is left")
async def my_limits(user: CurrentUser, limiter: LimiterDep) -> LimitsOut:
    view = await limiter.view(user.user_id, user.email, user.is_anonymous)
    return LimitsOut.model_validate(view, from_attributes=True)
