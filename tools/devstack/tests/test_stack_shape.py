"""The devstack's shape: replicas per service and a JetStream cluster of three nodes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from picture.common import contracts as c
from picture.common.messaging import Bus
from picture.devstack.stack import SERVICES, Ports, Stack, parse_replicas, replica_name


def test_replicas_parse_as_one_count_for_all_then_per_service_overrides() -> None:
    assert parse_replicas("2") == dict.fromkeys(SERVICES, 2)
    assert parse_replicas("gateway=2,adapter=3") == {"gateway": 2, "replicate-adapter": 3}
    assert parse_replicas("2,media=1")["media"] == 1
    assert parse_replicas("2,media=1")["catalog"] == 2
    for bad in ("0", "nope=2", "gateway=x"):
        with pytest.raises(ValueError, match=r"replicas must be|unknown service|invalid literal"):
            parse_replicas(bad)


def test_first_replica_keeps_the_documented_port_others_get_their_own(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports(), {}, replicas={"gateway": 3})
    assert stack.replica_names("gateway") == ["gateway", "gateway-2", "gateway-3"]
    assert stack.replica_names("media") == ["media"]
    assert replica_name("media", 1) == "media"
    ports = [stack.port_of(name) for name in stack.replica_names("gateway")]
    assert ports[0] == 8080
    assert len(set(ports)) == 3
    assert stack.port_of("gateway-2") == ports[1], "a replica keeps its port across restarts"
    assert stack.stream_replicas == 1
    assert Stack(tmp_path, Ports(), {}, nats_nodes=3).stream_replicas == c.PRODUCTION_STREAM_REPLICAS


def test_three_nats_nodes_form_a_jetstream_cluster_with_streams_of_three_replicas(tmp_path: Path) -> None:
    stack = Stack(tmp_path, Ports.free(), {}, nats_nodes=3)
    stack.nats_cluster = stack._nats_servers()
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda node: node.start(), stack.nats_cluster))
        for node in stack.nats_cluster:
            node.wait_healthy()

        async def create() -> None:
            bus = await Bus.connect(stack.nats_url, "devstack-test")
            try:
                await bus.ensure_streams(replicas=stack.stream_replicas)
                info = await bus.js.stream_info(c.CMD_STREAM.name)
                assert info.config.num_replicas == 3
            finally:
                await bus.close()

        asyncio.run(create())
        leaders = stack.stream_leaders()
        assert set(leaders) >= {s.name for s in c.STREAMS}
        assert set(leaders.values()) <= {node.server_name for node in stack.nats_cluster}
    finally:
        for node in stack.nats_cluster:
            node.stop()
