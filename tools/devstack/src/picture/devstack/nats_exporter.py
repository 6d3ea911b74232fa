"""NATS monitoring for a local Prometheus: ``/varz`` and ``/jsz`` as Prometheus metrics.

Production scrapes NATS through prometheus-nats-exporter (``-prefix=nats -jsz=all``), which no
package registry we use ships. This translator serves the JetStream metrics the dashboards,
rules and docs/metrics.md use under the same names and label names (``nats_stream_*``,
``nats_consumer_*``, ``nats_server_*``) plus a few ``nats_varz_*`` server totals; it reads the
monitoring endpoint on every scrape, so nothing is cached.

    picture-devstack nats-exporter --monitor-url http://127.0.0.1:8222 --port 7777
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SERVER_LABELS = ("server_id", "server_name", "cluster", "domain", "meta_leader", "is_meta_leader")
STREAM_LABELS = (*SERVER_LABELS, "account", "account_id", "stream_name", "stream_leader", "is_stream_leader")
CONSUMER_LABELS = (
    *STREAM_LABELS,
    "consumer_name",
    "consumer_leader",
    "is_consumer_leader",
    "consumer_desc",
    "consumer_created",
)
# (metric suffix, help, path into /jsz's JSON)
SERVER_METRICS = (
    ("server_total_streams", "Total number of streams in JetStream", ("streams",)),
    ("server_total_consumers", "Total number of consumers in JetStream", ("consumers",)),
    ("server_total_messages", "Total number of stored messages in JetStream", ("messages",)),
    ("server_total_message_bytes", "Total number of bytes stored in JetStream", ("bytes",)),
    ("server_max_memory", "JetStream Max Memory", ("config", "max_memory")),
    ("server_max_storage", "JetStream Max Storage", ("config", "max_storage")),
)
STREAM_METRICS = (
    ("stream_total_messages", "Total number of messages from a stream", ("state", "messages")),
    ("stream_total_bytes", "Total stored bytes from a stream", ("state", "bytes")),
    ("stream_first_seq", "First sequence from a stream", ("state", "first_seq")),
    ("stream_last_seq", "Last sequence from a stream", ("state", "last_seq")),
    ("stream_consumer_count", "Total number of consumers from a stream", ("state", "consumer_count")),
)
CONSUMER_METRICS = (
    (
        "consumer_delivered_consumer_seq",
        "Latest sequence number of a stream consumer",
        ("delivered", "consumer_seq"),
    ),
    ("consumer_delivered_stream_seq", "Latest sequence number of a stream", ("delivered", "stream_seq")),
    ("consumer_num_ack_pending", "Number of pending acks from a consumer", ("num_ack_pending",)),
    ("consumer_num_redelivered", "Number of redelivered messages from a consumer", ("num_redelivered",)),
    ("consumer_num_waiting", "Number of inflight fetch requests from a pull consumer", ("num_waiting",)),
    ("consumer_num_pending", "Number of pending messages from a consumer", ("num_pending",)),
    (
        "consumer_ack_floor_stream_seq",
        "Number of ack floor stream seq from a consumer",
        ("ack_floor", "stream_seq"),
    ),
    (
        "consumer_ack_floor_consumer_seq",
        "Number of ack floor consumer seq from a consumer",
        ("ack_floor", "consumer_seq"),
    ),
)
VARZ_METRICS = (
    ("connections", "Current client connections"),
    ("subscriptions", "Current subscriptions"),
    ("slow_consumers", "Slow consumers seen since start"),
    ("in_msgs", "Messages received since start"),
    ("out_msgs", "Messages sent since start"),
    ("in_bytes", "Bytes received since start"),
    ("out_bytes", "Bytes sent since start"),
    ("mem", "Resident memory in bytes"),
    ("cpu", "CPU usage in percent"),
)


def _dig(document: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = document
    for key in path:
        value = value.get(key, 0) if isinstance(value, dict) else 0
    return float(value or 0)


def _leader(detail: dict[str, Any], server_name: str) -> tuple[str, str]:
    """(leader name, "true"/"false"): a stream or consumer without cluster info is led here."""
    leader = str((detail.get("cluster") or {}).get("leader", "") or "")
    return leader, "true" if not leader or leader == server_name else "false"


def translate(varz: dict[str, Any], jsz: dict[str, Any], prefix: str = "nats") -> list[GaugeMetricFamily]:
    """The metric families of one NATS server, from its ``/varz`` and
    ``/jsz?accounts=true&consumers=true&config=true`` documents."""
    server_name = str(varz.get("server_name", ""))
    meta = jsz.get("meta_cluster") or {}
    meta_leader = str(meta.get("leader", "") or "")
    server = (
        str(varz.get("server_id", "")),
        server_name,
        str(meta.get("name", "") or ""),
        str((jsz.get("config") or {}).get("domain", "") or ""),
        meta_leader,
        "true" if not meta or meta_leader == server_name else "false",
    )
    families: dict[str, GaugeMetricFamily] = {}

    def family(suffix: str, doc: str, labels: Iterable[str]) -> GaugeMetricFamily:
        if suffix not in families:
            families[suffix] = GaugeMetricFamily(f"{prefix}_{suffix}", doc, labels=list(labels))
        return families[suffix]

    for key, doc in VARZ_METRICS:
        family(f"varz_{key}", doc, ("server_id",)).add_metric([server[0]], float(varz.get(key, 0) or 0))
    family("server_jetstream_disabled", "JetStream disabled or not", SERVER_LABELS).add_metric(
        list(server), 1.0 if jsz.get("disabled") else 0.0
    )
    for suffix, doc, path in SERVER_METRICS:
        family(suffix, doc, SERVER_LABELS).add_metric(list(server), _dig(jsz, path))
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            stream_labels = [
                *server,
                str(account.get("name", "")),
                str(account.get("id", "")),
                str(stream.get("name", "")),
                *_leader(stream, server_name),
            ]
            for suffix, doc, path in STREAM_METRICS:
                family(suffix, doc, STREAM_LABELS).add_metric(stream_labels, _dig(stream, path))
            for consumer in stream.get("consumer_detail") or []:
                consumer_labels = [
                    *stream_labels,
                    str(consumer.get("name", "")),
                    *_leader(consumer, server_name),
                    str((consumer.get("config") or {}).get("description", "") or ""),
                    str(consumer.get("created", "")),
                ]
                for suffix, doc, path in CONSUMER_METRICS:
                    family(suffix, doc, CONSUMER_LABELS).add_metric(consumer_labels, _dig(consumer, path))
    return list(families.values())


class NatsCollector(Collector):
    """Reads NATS's monitoring endpoint at every scrape (an unreachable NATS: no samples, and
    Prometheus's ``up`` of this job stays 1, as with prometheus-nats-exporter)."""

    def __init__(self, monitor_url: str, client: httpx.Client) -> None:
        self.monitor_url = monitor_url.rstrip("/")
        self.client = client

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            varz = self.client.get(f"{self.monitor_url}/varz").raise_for_status().json()
            jsz = (
                self.client.get(
                    f"{self.monitor_url}/jsz",
                    params={"accounts": "true", "consumers": "true", "config": "true"},
                )
                .raise_for_status()
                .json()
            )
        except httpx.HTTPError:
            return
        yield from translate(varz, jsz)


def serve(monitor_url: str, port: int, host: str = "127.0.0.1") -> int:
    """Serve ``/metrics`` until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    registry = CollectorRegistry(auto_describe=False)
    with httpx.Client(timeout=5) as client:
        registry.register(NatsCollector(monitor_url, client))
        server, thread = start_http_server(port, host, registry)
        try:
            stop.wait()
        finally:
            server.shutdown()
            thread.join(5)
    return 0
