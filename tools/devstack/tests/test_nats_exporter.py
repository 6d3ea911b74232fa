"""NATS's monitoring documents become the metrics prometheus-nats-exporter serves (same names and
label names as the dashboards and rules use), read from a real NATS server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from picture.common.messaging import Bus
from picture.devstack.infra import NatsServer
from picture.devstack.nats_exporter import CONSUMER_LABELS, NatsCollector
from picture.devstack.ports import free_port


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    folder: Path = tmp_path_factory.mktemp("nats")
    server = NatsServer(folder / "store", free_port(), free_port(), folder / "nats.log")
    server.start()
    yield server
    server.stop()


async def _backlog(url: str) -> None:
    """Two media commands waiting for a consumer that nobody runs."""
    bus = await Bus.connect(url, "exporter-test")
    try:
        await bus.ensure_streams()
        await bus.js.add_consumer(
            "PICTURE_CMD",
            durable_name="idle-media",
            filter_subject="picture.cmd.media.>",
            ack_policy="explicit",
        )
        for n in range(2):
            await bus.js.publish(f"picture.cmd.media.test{n}", b"{}")
    finally:
        await bus.close()


def test_jetstream_state_is_served_under_the_exporter_names(nats: NatsServer) -> None:
    asyncio.run(_backlog(nats.url))
    registry = CollectorRegistry(auto_describe=False)
    with httpx.Client(timeout=5) as client:
        registry.register(NatsCollector(nats.monitor_url, client))
        text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    pending = [
        s for s in families["nats_consumer_num_pending"].samples if s.labels["consumer_name"] == "idle-media"
    ]
    assert [(s.labels["stream_name"], s.value) for s in pending] == [("PICTURE_CMD", 2.0)]
    assert set(pending[0].labels) == set(CONSUMER_LABELS)
    assert pending[0].labels["is_consumer_leader"] == "true"
    delivered = next(
        s
        for s in families["nats_consumer_delivered_consumer_seq"].samples
        if s.labels["consumer_name"] == "idle-media"
    )
    assert delivered.value == 0
    messages = {s.labels["stream_name"]: s.value for s in families["nats_stream_total_messages"].samples}
    assert messages["PICTURE_CMD"] == 2 and messages["PICTURE_DLQ"] == 0
    assert "nats_stream_total_bytes" in families and "nats_consumer_num_ack_pending" in families
    assert families["nats_varz_connections"].samples[0].labels.keys() == {"server_id"}


def test_an_unreachable_nats_gives_no_samples() -> None:
    registry = CollectorRegistry(auto_describe=False)
    with httpx.Client(timeout=1) as client:
        registry.register(NatsCollector(f"http://127.0.0.1:{free_port()}", client))
        assert generate_latest(registry) == b""
