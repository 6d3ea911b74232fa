"""Tags on a real PostgreSQL: normalized names, idempotent create and attach, detach, delete
(taken off every image), and only the image's owner tags it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import images, tags
from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from services.catalog.tests.conftest import AddImage


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def listed(engine: AsyncEngine) -> dict[str, c.TagView]:
    return {tag.name: tag for tag in (await tags.list_tags(engine, c.ListTagsRequest())).tags}


async def image_tags(engine: AsyncEngine, image_id: uuid.UUID, viewer: uuid.UUID) -> tuple[str, ...]:
    reply = await images.get_image_detail(
        engine, c.GetImageDetailRequest(image_id=image_id, viewer_id=viewer)
    )
    return reply.image.tags


def test_tag_names_are_lowercased_and_trimmed() -> None:
    assert tags.normalize_tag("  Golden   Hour ") == "golden hour"
    with pytest.raises(QueryFailed) as failed:
        tags.normalize_tag("   ")
    assert failed.value.field == "name"


async def test_creating_a_tag_twice_returns_the_first(engine: AsyncEngine) -> None:
    name = unique("Sunset")
    created = await asyncio.gather(
        *(tags.create_tag(engine, c.TagRequest(name=f" {name.upper()} ", color="#FF0000")) for _ in range(5))
    )
    assert {reply.tag for reply in created} == {created[0].tag}  # one row, however concurrent
    assert (created[0].tag.name, created[0].tag.color) == (name.lower(), "#ff0000")
    again = await tags.create_tag(engine, c.TagRequest(name=name, color="#00FF00"))
    assert again.tag == created[0].tag  # the existing tag, colour unchanged
    assert (await listed(engine))[name.lower()] == created[0].tag
    with pytest.raises(QueryFailed) as blank:
        await tags.create_tag(engine, c.TagRequest(name="   "))
    assert (blank.value.code, blank.value.field) == (c.QueryErrorCode.INVALID, "name")


async def test_tags_are_listed_by_name(engine: AsyncEngine) -> None:
    prefix = unique("order")
    for name in ("b", "c", "a"):
        await tags.create_tag(engine, c.TagRequest(name=f"{prefix}-{name}"))
    names = [name for name in await listed(engine) if name.startswith(prefix)]
    assert names == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]


async def test_attaching_is_idempotent_and_creates_the_name(engine: AsyncEngine, add_image: AddImage) -> None:
    owner = uuid.uuid4()
    image = await add_image(owner)
    name = unique("Kite")
    replies = await asyncio.gather(
        *(
            tags.image_tag(engine, c.ImageTagRequest(image_id=image, user_id=owner, name=name))
            for _ in range(10)
        )
    )
    assert {reply.image.tags for reply in replies} == {(name.lower(),)}
    assert (await listed(engine))[name.lower()].color == tags.DEFAULT_TAG_COLOR
    detached = await tags.image_tag(
        engine, c.ImageTagRequest(image_id=image, user_id=owner, name=name, add=False)
    )
    assert detached.image.tags == ()
    again = await tags.image_tag(
        engine, c.ImageTagRequest(image_id=image, user_id=owner, name=name, add=False)
    )
    assert again.image.tags == ()
    assert name.lower() in await listed(engine)  # detaching keeps the shared name


async def test_only_the_owner_tags_an_image(engine: AsyncEngine, add_image: AddImage) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    image = await add_image(owner, is_public=True)
    name = unique("mine")
    await tags.image_tag(engine, c.ImageTagRequest(image_id=image, user_id=owner, name=name))
    for add in (True, False):
        with pytest.raises(QueryFailed) as refused:
            await tags.image_tag(
                engine,
                c.ImageTagRequest(
                    image_id=image, user_id=other, name=unique("theirs") if add else name, add=add
                ),
            )
        assert refused.value.code is c.QueryErrorCode.NOT_FOUND
    assert await image_tags(engine, image, owner) == (name,)


async def test_deleting_a_tag_takes_it_off_every_image(engine: AsyncEngine, add_image: AddImage) -> None:
    users = [uuid.uuid4(), uuid.uuid4()]
    name, kept = unique("gone"), unique("kept")
    tagged = []
    for user in users:
        image = await add_image(user)
        for tag in (name, kept):
            await tags.image_tag(engine, c.ImageTagRequest(image_id=image, user_id=user, name=tag))
        tagged.append((image, user))
    deleted = await tags.delete_tag(engine, c.TagRequest(name=name.upper()))
    assert deleted.tag.name == name
    assert name not in await listed(engine)
    for image, user in tagged:
        assert await image_tags(engine, image, user) == (kept,)
    with pytest.raises(QueryFailed) as missing:
        await tags.delete_tag(engine, c.TagRequest(name=name))
    assert (missing.value.code, missing.value.field) == (c.QueryErrorCode.NOT_FOUND, "name")
