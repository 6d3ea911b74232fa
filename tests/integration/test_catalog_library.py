"""The catalog's public API through the gateway: own gallery (filters, keyset pagination),
BOLA, tags, likes under concurrency, explore with full-text search, bulk actions and deletes
(object deletion through the catalog's outbox)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.common import contracts as c
from picture.common.messaging import Bus, QueryFailed
from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import wait_terminal

T0 = datetime(2026, 1, 1, tzinfo=UTC)

Client = Callable[[uuid.UUID | None], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    """Makes API clients: for a user (a token of their own) or anonymous (None)."""
    opened: list[httpx.AsyncClient] = []

    async def make(user: uuid.UUID | None) -> httpx.AsyncClient:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {mint_token(stack.secrets['PICTURE_JWT_SECRET'], user)}"
        http = httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=30)
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


async def add_image(
    db: AsyncEngine,
    user_id: uuid.UUID,
    *,
    created_at: datetime = T0,
    prompt: str = "a lighthouse at dusk",
    model: str = "flux-schnell",
    is_public: bool = False,
    is_favorite: bool = False,
    archived: bool = False,
    image_id: uuid.UUID | None = None,
) -> uuid.UUID:
    image_id = image_id or uuid.uuid4()
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO catalog.images (id, user_id, filename, content_key, thumbnail_key, file_size,"
                " width, height, format, sha256, prompt, model, is_public, is_favorite, archived_at,"
                " created_at)"
                " VALUES (:id, :u, 'x.webp', :key, :thumb, 10, 64, 64, 'webp', :sha, :prompt, :model, :pub,"
                " :fav, :archived, :at)"
            ),
            {
                "id": image_id,
                "u": user_id,
                "key": f"test/{user_id}/{image_id}.webp",
                "thumb": f"test/{user_id}/{image_id}.thumb.webp",
                "sha": "0" * 64,
                "prompt": prompt,
                "model": model,
                "pub": is_public,
                "fav": is_favorite,
                "archived": created_at if archived else None,
                "at": created_at,
            },
        )
    return image_id


async def pages(api: httpx.AsyncClient, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_cursor."""
    out: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        out.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


# ------------------------------------------------------------------------------------ gallery


async def test_gallery_pages_are_stable_on_equal_timestamps(db: AsyncEngine, client: Client) -> None:
    user = uuid.uuid4()
    api = await client(user)
    empty = await api.get("/v1/images")
    assert empty.status_code == 200
    assert empty.json() == {"data": [], "next_cursor": None}

    same = [await add_image(db, user, created_at=T0) for _ in range(5)]
    older = await add_image(db, user, created_at=T0 - timedelta(hours=1))
    newer = await add_image(db, user, created_at=T0 + timedelta(hours=1))
    expected = [str(newer), *sorted((str(i) for i in same), reverse=True), str(older)]

    got = await pages(api, "/v1/images", limit=3)
    assert [len(p) for p in got] == [3, 3, 1]
    assert [i for p in got for i in ids(p)] == expected

    exact = await pages(api, "/v1/images", limit=7)  # a full last page: no empty page after it
    assert [len(p) for p in exact] == [7]


async def test_gallery_deletes_between_pages_neither_repeat_nor_skip(db: AsyncEngine, client: Client) -> None:
    user = uuid.uuid4()
    api = await client(user)
    made = [await add_image(db, user, created_at=T0 + timedelta(minutes=i)) for i in range(6)]
    newest_first = [str(i) for i in reversed(made)]
    first = await api.get("/v1/images", params={"limit": 2})
    assert ids(first.json()["data"]) == newest_first[:2]
    # Delete the last item of page 1 and the first item page 2 would have shown.
    for victim in (newest_first[1], newest_first[2]):
        assert (await api.delete(f"/v1/images/{victim}")).status_code == 204
    second = await api.get("/v1/images", params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert ids(second.json()["data"]) == newest_first[3:5]
    third = await api.get("/v1/images", params={"limit": 2, "cursor": second.json()["next_cursor"]})
    assert ids(third.json()["data"]) == newest_first[5:]
    assert third.json()["next_cursor"] is None


async def test_gallery_filters(db: AsyncEngine, client: Client) -> None:
    user = uuid.uuid4()
    api = await client(user)
    plain = await add_image(db, user, created_at=T0)
    fav = await add_image(db, user, created_at=T0 + timedelta(days=1), is_favorite=True, model="sdxl")
    archived = await add_image(db, user, created_at=T0 + timedelta(days=2), archived=True)
    both = await add_image(db, user, created_at=T0 + timedelta(days=3))
    suffix = uuid.uuid4().hex[:8]
    red, blue = f"Red-{suffix}", f"blue-{suffix}"
    for image, names in ((plain, [red]), (fav, [red, blue]), (both, [red, blue]), (archived, [red, blue])):
        for name in names:
            response = await api.post(f"/v1/images/{image}/tags", json={"name": name})
            assert response.status_code == 200, response.text
    assert response.json()["tags"] == sorted([red.lower(), blue])

    async def listed(**params: Any) -> list[str]:
        response = await api.get("/v1/images", params=params)
        assert response.status_code == 200, response.text
        return ids(response.json()["data"])

    assert await listed() == [str(both), str(fav), str(plain)]
    assert await listed(archived=True) == [str(archived)]
    assert await listed(favorite=True) == [str(fav)]
    assert await listed(favorite=False) == [str(both), str(plain)]
    assert await listed(model="sdxl") == [str(fav)]
    assert await listed(tag=[red]) == [str(both), str(fav), str(plain)]
    assert await listed(tag=[red.upper(), blue]) == [str(both), str(fav)]
    assert await listed(tag=[blue, f"nope-{suffix}"]) == []
    assert await listed(archived=True, tag=[red, blue]) == [str(archived)]
    window = {
        "created_after": (T0 + timedelta(hours=12)).isoformat(),
        "created_before": (T0 + timedelta(days=3)).isoformat(),
    }
    assert await listed(**window) == [str(fav)]
    assert await listed(created_after="2026-01-03T12:00:00") == [str(both)]  # no zone: UTC
    untag = await api.delete(f"/v1/images/{both}/tags/{blue}")
    assert untag.status_code == 200 and untag.json()["tags"] == [red.lower()]
    assert await listed(tag=[red, blue]) == [str(fav)]


async def test_patch_and_bulk(db: AsyncEngine, client: Client) -> None:
    user = uuid.uuid4()
    api = await client(user)
    image = await add_image(db, user)
    patched = await api.patch(
        f"/v1/images/{image}", json={"is_public": True, "is_favorite": True, "rating": 5, "archived": True}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["is_public"], body["is_favorite"], body["rating"], body["archived"]) == (True, True, 5, True)
    cleared = await api.patch(f"/v1/images/{image}", json={"rating": None, "archived": False})
    assert (cleared.json()["rating"], cleared.json()["archived"], cleared.json()["is_favorite"]) == (
        None,
        False,
        True,
    )

    for bad, field in (({"rating": 6}, "rating"), ({"user_id": str(uuid.uuid4())}, "user_id")):
        response = await api.patch(f"/v1/images/{image}", json=bad)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text

    others = [await add_image(db, user, created_at=T0 + timedelta(minutes=i)) for i in range(3)]
    stranger = await add_image(db, uuid.uuid4())
    targets = [str(i) for i in others] + [str(stranger)]
    archived = await api.post("/v1/images/bulk", json={"action": "archive", "ids": targets})
    assert archived.status_code == 200 and archived.json()["affected"] == [str(i) for i in others]
    assert ids((await api.get("/v1/images", params={"archived": True})).json()["data"]) == [
        str(i) for i in reversed(others)
    ]
    restored = await api.post("/v1/images/bulk", json={"action": "restore", "ids": targets[:2]})
    assert restored.json()["affected"] == targets[:2]
    too_many = await api.post("/v1/images/bulk", json={"action": "delete", "ids": [str(uuid.uuid4())] * 101})
    assert too_many.status_code == 422
    deleted = await api.post("/v1/images/bulk", json={"action": "delete", "ids": targets})
    assert deleted.json()["affected"] == [str(i) for i in others]
    assert (await api.get(f"/v1/images/{others[0]}")).status_code == 404
    async with db.connect() as conn:
        assert (
            await conn.execute(text("SELECT count(*) FROM catalog.images WHERE id = :i"), {"i": stranger})
        ).scalar_one() == 1


async def test_delete_asks_media_to_delete_the_objects(db: AsyncEngine, client: Client) -> None:
    user = uuid.uuid4()
    api = await client(user)
    image = await add_image(db, user)
    assert (await api.delete(f"/v1/images/{image}")).status_code == 204
    assert (await api.delete(f"/v1/images/{image}")).status_code == 404
    key = f"test/{user}/{image}.webp"
    deadline = time.monotonic() + 15
    while True:
        async with db.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT convert_from(payload, 'UTF8')::jsonb AS envelope, published_at"
                        " FROM catalog.outbox WHERE convert_from(payload, 'UTF8') LIKE :k"
                    ),
                    {"k": f"%{key}%"},
                )
            ).one()
        if row.published_at is not None:
            break
        assert time.monotonic() < deadline, "outbox row not relayed"
        await asyncio.sleep(0.1)
    assert row.envelope["type"] == "media.delete"
    assert sorted(row.envelope["data"]["keys"]) == sorted([key, f"test/{user}/{image}.thumb.webp"])


# ------------------------------------------------------------------------------------ BOLA


async def test_other_users_private_images_are_not_found_everywhere(db: AsyncEngine, client: Client) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    mine, theirs, anonymous = await client(owner), await client(other), await client(None)
    image = await add_image(db, owner)
    attempts = [
        theirs.get(f"/v1/images/{image}"),
        anonymous.get(f"/v1/images/{image}"),
        theirs.patch(f"/v1/images/{image}", json={"is_public": True}),
        theirs.delete(f"/v1/images/{image}"),
        theirs.post(f"/v1/images/{image}/tags", json={"name": "x"}),
        theirs.delete(f"/v1/images/{image}/tags/x"),
        theirs.post(f"/v1/images/{image}/like"),
        theirs.delete(f"/v1/images/{image}/like"),
        theirs.get(f"/v1/images/{image}/content"),
    ]
    for response in await asyncio.gather(*attempts):
        assert response.status_code == 404, (response.request.method, response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    bulk = await theirs.post("/v1/images/bulk", json={"action": "delete", "ids": [str(image)]})
    assert bulk.json()["affected"] == []
    assert (await mine.get(f"/v1/images/{image}")).status_code == 200

    assert (await mine.patch(f"/v1/images/{image}", json={"is_public": True, "rating": 3})).status_code == 200
    seen = await theirs.get(f"/v1/images/{image}")
    assert seen.status_code == 200
    assert seen.json()["rating"] is None  # the owner's marks stay private
    assert (await anonymous.get(f"/v1/images/{image}")).status_code == 200
    assert (await theirs.patch(f"/v1/images/{image}", json={"is_public": False})).status_code == 404
    assert (await theirs.post(f"/v1/images/{image}/tags", json={"name": "x"})).status_code == 404
    assert (await theirs.post(f"/v1/images/{image}/like")).status_code == 200


# ------------------------------------------------------------------------------------ likes and tags


async def test_concurrent_likes_count_once_per_user(db: AsyncEngine, client: Client) -> None:
    owner, fan = uuid.uuid4(), uuid.uuid4()
    image = await add_image(db, owner, is_public=True)
    apis = [await client(owner), await client(fan)]
    likes = await asyncio.gather(*(apis[i % 2].post(f"/v1/images/{image}/like") for i in range(40)))
    assert {r.status_code for r in likes} == {200}
    detail = (await apis[0].get(f"/v1/images/{image}")).json()
    assert detail["like_count"] == 2
    unlikes = await asyncio.gather(*(apis[1].delete(f"/v1/images/{image}/like") for _ in range(20)))
    assert {r.json()["like_count"] for r in unlikes} == {1}
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT count(*) FROM catalog.image_likes WHERE image_id = :i"), {"i": image}
            )
        ).scalar_one()
    assert rows == 1


async def test_concurrent_tagging_is_idempotent(db: AsyncEngine, client: Client) -> None:
    user = uuid.uuid4()
    api = await client(user)
    image = await add_image(db, user)
    name = f"Sunset-{uuid.uuid4().hex[:8]}"
    results = await asyncio.gather(
        *(api.post(f"/v1/images/{image}/tags", json={"name": name}) for _ in range(20))
    )
    assert {r.status_code for r in results} == {200}
    assert (await api.get(f"/v1/images/{image}")).json()["tags"] == [name.lower()]
    created = await asyncio.gather(
        *(api.post("/v1/tags", json={"name": name.upper(), "color": "#FF0000"}) for _ in range(5))
    )
    assert {r.status_code for r in created} == {201}
    listed = [t for t in (await api.get("/v1/tags")).json()["data"] if t["name"] == name.lower()]
    assert len(listed) == 1
    assert (await api.post("/v1/tags", json={"name": "   "})).status_code == 422
    nul = await api.post("/v1/tags", json={"name": "a\u0000b"})  # PostgreSQL cannot store NUL
    assert nul.status_code == 422 and nul.headers["content-type"].startswith("application/problem+json")
    assert (await api.delete(f"/v1/tags/{name.lower()}")).status_code == 403  # administrators only


# ------------------------------------------------------------------------------------ explore


async def test_explore_search_sort_and_pages(db: AsyncEngine, client: Client) -> None:
    word = "zq" + uuid.uuid4().hex[:10]
    author, fan1, fan2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    anonymous = await client(None)
    loved = await add_image(db, author, prompt=f"castles under {word} skies", is_public=True, created_at=T0)
    liked = await add_image(
        db, author, prompt=f"{word} harbour", is_public=True, created_at=T0 + timedelta(hours=1)
    )
    fresh = [
        await add_image(
            db, author, prompt=f"{word} forest", is_public=True, created_at=T0 + timedelta(hours=2)
        )
        for _ in range(3)
    ]
    await add_image(db, author, prompt=f"{word} private", created_at=T0 + timedelta(hours=3))
    await add_image(
        db,
        author,
        prompt=f"{word} archived",
        is_public=True,
        archived=True,
        created_at=T0 + timedelta(hours=3),
    )
    await add_image(db, author, prompt="castles without the word", is_public=True)
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO catalog.profiles (id, username, avatar_url) VALUES (:id, :u, 'https://a.example/x.png')"
            ),
            {"id": author, "u": f"user_{word}"},
        )
    for fan in (fan1, fan2):
        assert (await (await client(fan)).post(f"/v1/images/{loved}/like")).status_code == 200
    assert (await (await client(fan1)).post(f"/v1/images/{liked}/like")).status_code == 200

    recent = [i for p in await pages(anonymous, "/v1/explore", q=word, limit=2) for i in p]
    fresh_ids = sorted((str(i) for i in fresh), reverse=True)
    assert ids(recent) == [*fresh_ids, str(liked), str(loved)]
    assert recent[-1]["author"] == {"username": f"user_{word}", "avatar_url": "https://a.example/x.png"}
    assert recent[-1]["like_count"] == 2

    popular = [i for p in await pages(anonymous, "/v1/explore", q=word, sort="popular", limit=2) for i in p]
    assert ids(popular) == [str(loved), str(liked), *fresh_ids]
    stemmed = await anonymous.get("/v1/explore", params={"q": f"castle {word}"})
    assert ids(stemmed.json()["data"]) == [str(loved)]  # English stemming: castle matches castles
    bad = await anonymous.get("/v1/explore", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"


async def test_deleting_a_generated_image_removes_its_stored_objects(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """The whole way: generate, delete through the gallery, media removes both objects."""
    submitted = await api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": "a red kite", "seed": 3}
    )
    assert submitted.status_code == 202, submitted.text
    done = await wait_terminal(api, submitted.json()["id"])
    assert done["status"] == "completed", done
    image_id = done["image"]["id"]
    assert (await api.get(f"/v1/images/{image_id}/content")).status_code == 200
    async with db_keys(stack, image_id) as keys:
        assert len(keys) == 2
        assert (await api.delete(f"/v1/images/{image_id}")).status_code == 204
        assert (await api.get(f"/v1/images/{image_id}")).status_code == 404
        assert stack.nats is not None
        bus = await Bus.connect(stack.nats.url, "test-catalog-delete", 10.0)
        try:
            deadline = time.monotonic() + 20
            for key in keys:
                while await stored(bus, key):
                    assert time.monotonic() < deadline, f"{key} still stored"
                    await asyncio.sleep(0.2)
        finally:
            await bus.close()


async def stored(bus: Bus, key: str) -> bool:
    try:
        await bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=key))
    except QueryFailed as exc:
        if exc.code is c.QueryErrorCode.NOT_FOUND:
            return False
        raise
    return True


@asynccontextmanager
async def db_keys(stack: Stack, image_id: str) -> AsyncIterator[list[str]]:
    """The content and thumbnail keys of an image, read before it is deleted."""
    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT content_key, thumbnail_key FROM catalog.images WHERE id = :i"),
                    {"i": image_id},
                )
            ).one()
        yield [key for key in row if key]
    finally:
        await engine.dispose()
