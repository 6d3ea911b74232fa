"""What the gateway's unit tests on a real PostgreSQL share: one server per module, migrated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.common.migrations import upgrade
from picture.devstack.infra import PostgresServer
from picture.devstack.servers import running_postgres


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with running_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="module")
async def engine(postgres_server: PostgresServer) -> AsyncIterator[AsyncEngine]:
    """An engine on the module's server, with the gateway's schema migrated."""
    await asyncio.to_thread(upgrade, "picture.gateway:migrations", postgres_server.url)
    created = create_async_engine(postgres_server.url)
    yield created
    await created.dispose()
