"""The sweep of unreferenced objects, on real PostgreSQL and NATS with a stand-in catalog: an
old object no image points at goes (with its row), an old folder holding a referenced key stays
whole, a fresh object stays; a dry run deletes nothing."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.common import contracts as c
from picture.common.messaging import Bus
from picture.devstack.infra import NatsServer
from picture.media.signing import UrlSigner
from picture.media.storage import FilesystemStorage
from picture.media.sweep import Sweeper
from picture.media.tables import stored_objects

DAY = 86400.0
REFERENCED: set[str] = set()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    created = create_async_engine(database_url)
    yield created
    await created.dispose()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_server.url, "sweep-tests")

    async def referenced_keys(req: c.ReferencedKeysRequest) -> c.ReferencedKeysReply:
        return c.ReferencedKeysReply(keys=tuple(key for key in req.keys if key in REFERENCED))

    await bus.serve(c.REFERENCED_KEYS, referenced_keys)
    yield bus
    await bus.close()


async def _store(engine: AsyncEngine, root: Path, key: str, age_seconds: float) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    async with engine.begin() as conn:
        await conn.execute(
            insert(stored_objects).values(
                key=key,
                owner_id=uuid.uuid4(),
                role="original",
                content_type="image/webp",
                size=1,
                width=1,
                height=1,
                sha256="0" * 64,
            )
        )


async def _rows(engine: AsyncEngine, keys: list[str]) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).where(stored_objects.c.key.in_(keys)))
    return int(count or 0)


async def test_sweep_removes_only_old_unreferenced_objects(
    engine: AsyncEngine, bus: Bus, objects_dir: Path
) -> None:
    user = uuid.uuid4()
    orphan = [f"{user}/{uuid.uuid4()}/image.webp", f"{user}/{uuid.uuid4()}/thumb.webp"]
    folder = f"{user}/{uuid.uuid4()}"
    kept = [f"{folder}/image.svg", f"{folder}/preview.webp", f"{folder}/thumb.webp"]
    fresh = [f"{user}/{uuid.uuid4()}/image.webp"]
    REFERENCED.add(kept[0])  # the image record names the original only, not its preview
    for key in orphan + kept:
        await _store(engine, objects_dir, key, 2 * DAY)
    for key in fresh:
        await _store(engine, objects_dir, key, 60)
    storage = FilesystemStorage(objects_dir, UrlSigner(b"k" * 32, "http://media.test"))

    def sweeper(dry_run: bool) -> Sweeper:
        return Sweeper(engine, bus, storage, grace_seconds=DAY, batch_size=2, dry_run=dry_run)

    dry = await sweeper(True).sweep_once()
    assert dry is not None and (dry.candidates, dry.referenced, dry.removed) == (5, 3, 2)
    assert all((objects_dir / key).exists() for key in orphan + kept + fresh)

    done = await sweeper(False).sweep_once()
    assert done is not None and (done.candidates, done.referenced, done.removed) == (5, 3, 2)
    assert [key for key in orphan + kept + fresh if (objects_dir / key).exists()] == kept + fresh
    assert await _rows(engine, orphan) == 0
    assert await _rows(engine, kept + fresh) == 4

    again = await sweeper(False).sweep_once()
    assert again is not None and again.removed == 0


async def test_a_failed_catalog_query_deletes_nothing(engine: AsyncEngine, objects_dir: Path) -> None:
    key = f"{uuid.uuid4()}/{uuid.uuid4()}/image.webp"
    await _store(engine, objects_dir, key, 2 * DAY)
    storage = FilesystemStorage(objects_dir, UrlSigner(b"k" * 32, "http://media.test"))

    class NoCatalog:
        async def request(self, *_: object, **__: object) -> object:
            raise TimeoutError("no catalog")

    sweeper = Sweeper(engine, NoCatalog(), storage, grace_seconds=DAY, batch_size=10, dry_run=False)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await sweeper.sweep_once()
    assert (objects_dir / key).exists()
    assert await _rows(engine, [key]) == 1
