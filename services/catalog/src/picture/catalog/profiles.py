"""Profiles: one per user, created on first sight (the gateway's ensure command, or the first
read when that command has not arrived yet); the user sets a unique username and an avatar."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.catalog.tables import profiles
from picture.common import contracts as c
from picture.common.messaging import QueryFailed


def profile_view(row: Any) -> c.ProfileView:
    return c.ProfileView.model_validate(row, from_attributes=True)


async def _ensure(conn: AsyncConnection, user_id: uuid.UUID, email: str | None) -> None:
    """Insert the profile when missing; a known email (not None) replaces a different one."""
    statement = pg_insert(profiles).values(id=user_id, email=email)
    if email is None:
        await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
    else:
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_={"email": statement.excluded.email, "updated_at": func.now()},
                where=profiles.c.email.is_distinct_from(statement.excluded.email),
            )
        )


async def _load(conn: AsyncConnection, user_id: uuid.UUID) -> c.ProfileView:
    return profile_view((await conn.execute(select(profiles).where(profiles.c.id == user_id))).one())


async def ensure_profile(engine: AsyncEngine, cmd: c.EnsureProfileCommand) -> None:
    """Create the user's profile on first sight (idempotent; a newer email replaces the old)."""
    async with engine.begin() as conn:
        await _ensure(conn, cmd.user_id, cmd.email)


async def get_profile(engine: AsyncEngine, req: c.GetProfileRequest) -> c.ProfileReply:
    async with engine.begin() as conn:
        await _ensure(conn, req.user_id, req.email)
        return c.ProfileReply(profile=await _load(conn, req.user_id))


async def update_profile(engine: AsyncEngine, req: c.UpdateProfileRequest) -> c.ProfileReply:
    values: dict[str, Any] = {}
    if req.username is not None:
        values["username"] = req.username
    if req.clear_avatar:
        values["avatar_url"] = None
    elif req.avatar_url is not None:
        values["avatar_url"] = req.avatar_url
    try:
        async with engine.begin() as conn:
            await _ensure(conn, req.user_id, None)
            if values:
                await conn.execute(
                    update(profiles)
                    .where(profiles.c.id == req.user_id)
                    .values(**values, updated_at=func.now())
                )
            profile = await _load(conn, req.user_id)
    except IntegrityError as exc:
        if "ux_profiles_username" in str(exc.orig):
            raise QueryFailed(c.QueryErrorCode.CONFLICT, "username is taken", field="username") from exc
        raise
    return c.ProfileReply(profile=profile)
