"""Pages of images on a real PostgreSQL: the owner's gallery (filters, keyset pages that neither
repeat nor skip) and explore (public only, search with stemming, recent and popular order)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import gallery, images, likes, tags
from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from services.catalog.tests.conftest import T0, AddImage


async def every_page(
    engine: AsyncEngine, req: c.ListImagesRequest | c.ExploreRequest
) -> list[list[uuid.UUID]]:
    """The ids of each page, following next_cursor to the end."""
    pages: list[list[uuid.UUID]] = []
    while True:
        if isinstance(req, c.ListImagesRequest):
            reply = await gallery.list_images(engine, req)
        else:
            reply = await gallery.explore(engine, req)
        pages.append([image.id for image in reply.images])
        if reply.next_cursor is None:
            return pages
        assert len(pages) < 100, "pagination did not end"
        req = req.model_copy(update={"cursor": reply.next_cursor})


def newest_first(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Equal timestamps: by id, descending (the keyset's tie-break)."""
    return sorted(ids, reverse=True)


# ------------------------------------------------------------------------------------ gallery


async def test_gallery_pages_are_stable_on_equal_timestamps(engine: AsyncEngine, add_image: AddImage) -> None:
    user = uuid.uuid4()
    assert await every_page(engine, c.ListImagesRequest(user_id=user)) == [[]]
    same = [await add_image(user, created_at=T0) for _ in range(5)]
    older = await add_image(user, created_at=T0 - timedelta(hours=1))
    newer = await add_image(user, created_at=T0 + timedelta(hours=1))
    await add_image(uuid.uuid4(), created_at=T0)  # someone else's: never in this gallery

    pages = await every_page(engine, c.ListImagesRequest(user_id=user, limit=3))
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == [newer, *newest_first(same), older]
    assert [len(page) for page in await every_page(engine, c.ListImagesRequest(user_id=user, limit=7))] == [7]


async def test_gallery_deletes_between_pages_neither_repeat_nor_skip(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    user = uuid.uuid4()
    made = [await add_image(user, created_at=T0 + timedelta(minutes=i)) for i in range(6)]
    order = list(reversed(made))
    first = await gallery.list_images(engine, c.ListImagesRequest(user_id=user, limit=2))
    assert [i.id for i in first.images] == order[:2]
    await images.bulk_images(
        engine, c.BulkImagesRequest(user_id=user, action="delete", ids=(order[1], order[2]))
    )
    rest = await every_page(engine, c.ListImagesRequest(user_id=user, limit=2, cursor=first.next_cursor))
    assert rest == [order[3:5], order[5:]]


async def test_gallery_filters(engine: AsyncEngine, add_image: AddImage) -> None:
    user = uuid.uuid4()
    plain = await add_image(user, created_at=T0)
    fav = await add_image(user, created_at=T0 + timedelta(days=1), is_favorite=True, model="sdxl")
    archived = await add_image(user, created_at=T0 + timedelta(days=2), archived=True)
    both = await add_image(user, created_at=T0 + timedelta(days=3))
    suffix = uuid.uuid4().hex[:8]
    red, blue = f"Red-{suffix}", f"blue-{suffix}"
    for image, names in ((plain, [red]), (fav, [red, blue]), (both, [red, blue]), (archived, [red, blue])):
        for name in names:
            await tags.image_tag(engine, c.ImageTagRequest(image_id=image, user_id=user, name=name))
    # Someone else's image with both tags is not in this user's gallery.
    other = uuid.uuid4()
    theirs = await add_image(other)
    for name in (red, blue):
        await tags.image_tag(engine, c.ImageTagRequest(image_id=theirs, user_id=other, name=name))

    async def listed(**filters: Any) -> list[uuid.UUID]:
        reply = await gallery.list_images(engine, c.ListImagesRequest(user_id=user, **filters))
        return [image.id for image in reply.images]

    assert await listed() == [both, fav, plain]
    assert await listed(archived=True) == [archived]
    assert await listed(favorite=True) == [fav]
    assert await listed(favorite=False) == [both, plain]
    assert await listed(model="sdxl") == [fav]
    assert await listed(tags=(red,)) == [both, fav, plain]
    assert await listed(tags=(f"  {red.upper()} ", blue)) == [both, fav]  # names are normalized
    assert await listed(tags=(blue, f"nope-{suffix}")) == []  # an unknown tag: nothing has it
    assert await listed(archived=True, tags=(red, blue)) == [archived]
    window = {"created_after": T0 + timedelta(hours=12), "created_before": T0 + timedelta(days=3)}
    assert await listed(**window) == [fav]  # after: inclusive; before: exclusive
    assert await listed(created_after=T0 + timedelta(days=1)) == [both, fav]


async def test_a_cursor_not_made_by_the_catalog_is_invalid_input(engine: AsyncEngine) -> None:
    for request in (
        gallery.list_images(engine, c.ListImagesRequest(user_id=uuid.uuid4(), cursor="not-a-cursor")),
        gallery.explore(engine, c.ExploreRequest(cursor="not-a-cursor")),
        gallery.explore(engine, c.ExploreRequest(sort="popular", cursor="not-a-cursor")),
    ):
        with pytest.raises(QueryFailed) as invalid:
            await request
        assert (invalid.value.code, invalid.value.field) == (c.QueryErrorCode.INVALID, "cursor")


# ------------------------------------------------------------------------------------ explore


async def test_explore_search_in_recent_and_popular_order(engine: AsyncEngine, add_image: AddImage) -> None:
    word = "zq" + uuid.uuid4().hex[:10]
    author, fans = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    loved = await add_image(author, prompt=f"castles under {word} skies", is_public=True, created_at=T0)
    liked = await add_image(
        author, prompt=f"{word} harbour", is_public=True, created_at=T0 + timedelta(hours=1)
    )
    fresh = [
        await add_image(author, prompt=f"{word} forest", is_public=True, created_at=T0 + timedelta(hours=2))
        for _ in range(3)
    ]
    await add_image(author, prompt=f"{word} private", created_at=T0 + timedelta(hours=3))
    await add_image(author, prompt=f"{word} archived", is_public=True, archived=True, created_at=T0)
    await add_image(author, prompt="castles without the word", is_public=True)
    for fan in fans[:2]:
        await likes.like(engine, c.LikeRequest(image_id=loved, user_id=fan))
    await likes.like(engine, c.LikeRequest(image_id=liked, user_id=fans[2]))

    recent = await every_page(engine, c.ExploreRequest(q=word, limit=2))
    assert [len(page) for page in recent] == [2, 2, 1]
    assert [i for page in recent for i in page] == [*newest_first(fresh), liked, loved]
    popular = await every_page(engine, c.ExploreRequest(q=word, sort="popular", limit=2))
    assert [i for page in popular for i in page] == [loved, liked, *newest_first(fresh)]
    stemmed = await gallery.explore(engine, c.ExploreRequest(q=f"castle {word}"))
    assert [i.id for i in stemmed.images] == [loved]  # English stemming: castle matches castles
    blank = await gallery.explore(engine, c.ExploreRequest(q="   ", limit=3))
    assert blank == await gallery.explore(engine, c.ExploreRequest(limit=3))  # a blank search is none


async def test_explore_without_search_pages_through_everyones_public_images(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    """No search: the plain page query. This test's images are the newest and the most popular
    of the whole session (far in the future, a popularity no other test reaches)."""
    future = datetime(2900, 1, 1, tzinfo=T0.tzinfo)
    users = [uuid.uuid4(), uuid.uuid4()]
    made = [
        await add_image(
            users[i % 2], is_public=True, created_at=future + timedelta(minutes=i), like_count=10**6 + i % 3
        )
        for i in range(5)
    ]
    await add_image(users[0], created_at=future + timedelta(days=1), like_count=10**7)  # private
    await add_image(users[1], is_public=True, archived=True, created_at=future + timedelta(days=1))
    recent = await every_page(engine, c.ExploreRequest(limit=2))
    assert [i for page in recent[:3] for i in page][:5] == list(reversed(made))
    popular = await every_page(engine, c.ExploreRequest(sort="popular", limit=2))
    # by popularity (likes + downloads), then newest first
    expected = sorted(made, key=lambda i: (-(made.index(i) % 3), -made.index(i)))
    assert [i for page in popular[:3] for i in page][:5] == expected
