from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from picture.common.messaging import Bus
from picture.devstack.infra import NatsServer
from picture.devstack.servers import running_nats


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_server.url, "test")
    await bus.ensure_streams()
    yield bus
    await bus.close()
