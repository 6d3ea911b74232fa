"""Profiles on a real PostgreSQL: created on first sight (command or read), a known email kept
up to date, usernames unique whatever their case, avatar set and cleared."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import profiles
from picture.common import contracts as c
from picture.common.messaging import QueryFailed


async def profile(engine: AsyncEngine, user: uuid.UUID, email: str | None = None) -> c.ProfileView:
    return (await profiles.get_profile(engine, c.GetProfileRequest(user_id=user, email=email))).profile


async def test_the_ensure_command_creates_once_and_keeps_the_newest_email(engine: AsyncEngine) -> None:
    user = uuid.uuid4()
    await profiles.ensure_profile(engine, c.EnsureProfileCommand(user_id=user, email="a@example.com"))
    created = await profile(engine, user)
    assert (created.id, created.email, created.username, created.avatar_url) == (
        user,
        "a@example.com",
        None,
        None,
    )
    await profiles.ensure_profile(engine, c.EnsureProfileCommand(user_id=user))  # no email: keeps it
    assert await profile(engine, user) == created
    await profiles.ensure_profile(engine, c.EnsureProfileCommand(user_id=user, email="a@example.com"))
    assert await profile(engine, user) == created  # the same email: not even updated_at moves
    await profiles.ensure_profile(engine, c.EnsureProfileCommand(user_id=user, email="b@example.com"))
    changed = await profile(engine, user)
    assert (changed.email, changed.created_at) == ("b@example.com", created.created_at)
    assert changed.updated_at >= created.updated_at


async def test_a_read_before_the_command_creates_the_profile(engine: AsyncEngine) -> None:
    user = uuid.uuid4()
    assert (await profile(engine, user, "c@example.com")).email == "c@example.com"
    assert (await profile(engine, user)).email == "c@example.com"


async def test_username_and_avatar(engine: AsyncEngine) -> None:
    user, rival = uuid.uuid4(), uuid.uuid4()
    name = f"painter_{uuid.uuid4().hex[:8]}"
    updated = await profiles.update_profile(
        engine, c.UpdateProfileRequest(user_id=user, username=name, avatar_url="https://a.example/x.png")
    )
    assert (updated.profile.id, updated.profile.username, updated.profile.avatar_url) == (
        user,
        name,
        "https://a.example/x.png",
    )  # created on the spot by the update, too
    with pytest.raises(QueryFailed) as taken:
        await profiles.update_profile(engine, c.UpdateProfileRequest(user_id=rival, username=name.upper()))
    assert (taken.value.code, taken.value.field) == (c.QueryErrorCode.CONFLICT, "username")
    assert (await profile(engine, rival)).username is None
    same = await profiles.update_profile(engine, c.UpdateProfileRequest(user_id=user, username=name))
    assert same.profile.username == name  # keeping one's own name is no conflict
    cleared = await profiles.update_profile(engine, c.UpdateProfileRequest(user_id=user, clear_avatar=True))
    assert (cleared.profile.username, cleared.profile.avatar_url) == (name, None)
    nothing = await profiles.update_profile(engine, c.UpdateProfileRequest(user_id=user))
    assert nothing.profile == cleared.profile
