"""Likes on a real PostgreSQL: one like per user and image however often or concurrently sent,
the count moves only with a real change, and only images the user can see are liked."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import images, likes
from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from services.catalog.tests.conftest import AddImage


async def like(engine: AsyncEngine, image: uuid.UUID, user: uuid.UUID, *, on: bool = True) -> c.LikeReply:
    return await likes.like(engine, c.LikeRequest(image_id=image, user_id=user, like=on))


async def test_liking_twice_counts_once_and_unliking_twice_once(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    owner, fan = uuid.uuid4(), uuid.uuid4()
    image = await add_image(owner, is_public=True)
    assert await like(engine, image, fan) == c.LikeReply(image_id=image, liked=True, like_count=1)
    assert (await like(engine, image, fan)).like_count == 1
    assert (await like(engine, image, owner)).like_count == 2
    assert await like(engine, image, fan, on=False) == c.LikeReply(image_id=image, liked=False, like_count=1)
    assert (await like(engine, image, fan, on=False)).like_count == 1
    assert (await like(engine, image, uuid.uuid4(), on=False)).like_count == 1  # never liked: no change
    detail = await images.get_image_detail(engine, c.GetImageDetailRequest(image_id=image, viewer_id=None))
    assert detail.image.like_count == 1


async def test_concurrent_likes_count_once_per_user(engine: AsyncEngine, add_image: AddImage) -> None:
    users = [uuid.uuid4(), uuid.uuid4()]
    image = await add_image(users[0], is_public=True)
    await asyncio.gather(*(like(engine, image, users[i % 2]) for i in range(20)))
    assert (await like(engine, image, users[0])).like_count == 2
    unliked = await asyncio.gather(*(like(engine, image, users[1], on=False) for _ in range(10)))
    assert {reply.like_count for reply in unliked} == {1}


async def test_only_visible_images_are_liked(engine: AsyncEngine, add_image: AddImage) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    private = await add_image(owner)
    for on in (True, False):
        with pytest.raises(QueryFailed) as hidden:
            await like(engine, private, other, on=on)
        assert hidden.value.code is c.QueryErrorCode.NOT_FOUND
    assert (await like(engine, private, owner)).like_count == 1  # the owner sees their own
    with pytest.raises(QueryFailed):
        await like(engine, uuid.uuid4(), owner)
