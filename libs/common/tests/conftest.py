from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from picture.common.messaging import Bus
from picture.devstack.infra import NatsServer
from picture.devstack.ports import free_port


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    folder = tmp_path_factory.mktemp("nats")
    server = NatsServer(folder / "store", free_port(), free_port(), folder / "nats.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_server.url, "test")
    await bus.ensure_streams()
    yield bus
    await bus.close()
