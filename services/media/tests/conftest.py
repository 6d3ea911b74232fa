"""Shared fixtures: real NATS and PostgreSQL (session), moto's S3 server (session)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from picture.common.migrations import upgrade
from picture.devstack.infra import NatsServer, PostgresServer
from picture.devstack.ports import free_port
from picture.devstack.servers import running_nats, running_postgres
from picture.media.storage import open_s3_client

S3_BUCKET = "picture-test"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with running_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="session")
async def database_url(postgres_server: PostgresServer) -> str:
    await asyncio.to_thread(upgrade, "picture.media:migrations", postgres_server.url)
    return postgres_server.url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def s3_client(moto_endpoint: str) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:
        client = await open_s3_client(
            stack,
            endpoint_url=moto_endpoint,
            region="us-east-1",
            access_key_id="testing",
            secret_access_key="testing",
        )
        await client.create_bucket(Bucket=S3_BUCKET)
        yield client


@pytest.fixture
def objects_dir(tmp_path: Path) -> Path:
    path = tmp_path / "objects"
    path.mkdir()
    return path
