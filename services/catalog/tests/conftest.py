"""One real PostgreSQL for the session with the catalog's schema migrated; each test makes its
own rows (its own user ids, tag names, search words), so tests neither clean up nor depend on
each other's data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.catalog.tables import images
from picture.common.migrations import upgrade
from picture.devstack.infra import PostgresServer
from picture.devstack.servers import running_postgres

T0 = datetime(2026, 1, 1, tzinfo=UTC)

AddImage = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with running_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="session")
async def engine(postgres_server: PostgresServer) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, "picture.catalog:migrations", postgres_server.url)
    created = create_async_engine(postgres_server.url, pool_size=5)
    yield created
    await created.dispose()


@pytest.fixture
def add_image(engine: AsyncEngine) -> AddImage:
    """Inserts an image row of ``user_id`` with the columns a test cares about; returns its id."""

    async def add(
        user_id: uuid.UUID,
        *,
        created_at: datetime = T0,
        prompt: str = "a lighthouse at dusk",
        model: str = "flux-schnell",
        is_public: bool = False,
        is_favorite: bool = False,
        archived: bool = False,
        like_count: int = 0,
        download_count: int = 0,
    ) -> uuid.UUID:
        image_id = uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(
                insert(images).values(
                    id=image_id,
                    user_id=user_id,
                    filename="x.webp",
                    content_key=f"test/{user_id}/{image_id}.webp",
                    thumbnail_key=f"test/{user_id}/{image_id}.thumb.webp",
                    file_size=10,
                    width=64,
                    height=64,
                    format="webp",
                    sha256="0" * 64,
                    prompt=prompt,
                    model=model,
                    is_public=is_public,
                    is_favorite=is_favorite,
                    archived_at=created_at if archived else None,
                    created_at=created_at,
                    like_count=like_count,
                    download_count=download_count,
                )
            )
        return image_id

    return add
