"""After one generation, every service's /metrics exports the metrics documented in
docs/metrics.md with exactly the documented label names, and no label value is unbounded."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from picture.devstack.stack import SERVICES, Stack
from tests.integration.conftest import wait_terminal

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
UUID_OR_HEX_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-|[0-9a-f]{24,}", re.IGNORECASE)
# Series that must have samples after one completed generation, by service.
FLOW_SERIES = {
    "gateway": {"picture_http_requests_total", "picture_http_request_duration_seconds"},
    "orchestrator": {
        "picture_query_handle_seconds",
        "picture_consumer_messages_total",
        "picture_consumer_handle_seconds",
        "picture_outbox_published_total",
        "picture_generations_finished_total",
        "picture_generation_duration_seconds",
        "picture_generation_queue_wait_seconds",
        "picture_generations_active",
        "picture_scheduler_dispatched_total",
    },
    "replicate-adapter": {
        "picture_consumer_messages_total",
        "picture_replicate_requests_total",
        "picture_replicate_request_seconds",
        "picture_replicate_prediction_seconds",
        "picture_replicate_predictions_total",
        "picture_replicate_cost_usd_total",
        "picture_replicate_breaker_state",
        "picture_replicate_predictions_in_flight",
    },
    "media": {
        "picture_consumer_messages_total",
        "picture_media_downloads_total",
        "picture_media_processing_seconds",
        "picture_media_stored_bytes_total",
        "picture_media_ingests_total",
    },
    "catalog": {"picture_consumer_messages_total", "picture_query_handle_seconds"},
}


@dataclass(frozen=True)
class Documented:
    name: str
    type: str
    labels: frozenset[str]
    services: frozenset[str]


def documented_metrics() -> list[Documented]:
    """Rows of the "Service metrics" table of docs/metrics.md."""
    section = DOC.read_text().split("## Service metrics", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`picture_"):
            continue
        labels = re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cells[2]))
        exporters = cells[3]
        services = SERVICES if exporters == "all" else tuple(s.strip() for s in exporters.split(","))
        rows.append(Documented(cells[0].strip("`"), cells[1], frozenset(labels), frozenset(services)))
    return rows


async def scrape(stack: Stack) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        return {
            service: (await client.get(f"{stack.processes[service].url}/metrics")).text
            for service in SERVICES
        }


def family_name(doc: Documented) -> str:
    """prometheus_client's parser names counter families without ``_total``."""
    return doc.name.removesuffix("_total") if doc.type == "counter" else doc.name


async def test_documented_metrics_are_exported_with_their_labels(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    rows = documented_metrics()
    assert len(rows) >= 30, "the docs/metrics.md table was not parsed"
    assert {r.name for r in rows} >= set().union(*FLOW_SERIES.values())
    assert all(r.services <= set(SERVICES) for r in rows), [
        r for r in rows if not r.services <= set(SERVICES)
    ]

    prompt = "a metrics lighthouse 7f3a"
    response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": prompt})
    assert response.status_code == 202, response.text
    generation_id = response.json()["id"]
    assert (await wait_terminal(api, generation_id))["status"] == "completed"
    # Reads of one generation come from the gateway's read model; a client's list of its
    # generations is a query the orchestrator answers (its query metrics need one).
    assert (await api.get("/v1/generations")).status_code == 200

    # Gauges sampled in the background (in-flight by status) appear within a few seconds.
    deadline = time.monotonic() + 15
    while True:
        texts = await scrape(stack)
        if "picture_generations_active{" in texts["orchestrator"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)

    problems: list[str] = []
    for service, body in texts.items():
        families = {f.name: f for f in text_string_to_metric_families(body)}
        for doc in rows:
            family = families.get(family_name(doc))
            if service not in doc.services:
                continue
            if family is None:
                problems.append(f"{service}: {doc.name} missing")
                continue
            if family.type != doc.type:
                problems.append(f"{service}: {doc.name} is a {family.type}, documented {doc.type}")
            for sample in family.samples:
                names = set(sample.labels) - {"le", "quantile"}
                if names != doc.labels:
                    problems.append(
                        f"{service}: {sample.name} labels {sorted(names)} != {sorted(doc.labels)}"
                    )
                    break
            has_samples = any(not s.name.endswith("_created") for s in family.samples)
            if doc.name in FLOW_SERIES[service] and not has_samples:
                problems.append(f"{service}: {doc.name} has no samples after a generation")
        # Bounded labels: no ids, no prompt, no raw paths in any of our series.
        for family in families.values():
            if not family.name.startswith("picture_"):
                continue
            for sample in family.samples:
                for key, value in sample.labels.items():
                    if UUID_OR_HEX_ID.search(value) or prompt in value or generation_id in value:
                        problems.append(f"{service}: {sample.name} has an unbounded {key}={value!r}")
    assert problems == []

    # The latency SLO needs a bucket at exactly 60 s, and the generation was counted there.
    durations = next(
        f
        for f in text_string_to_metric_families(texts["orchestrator"])
        if f.name == "picture_generation_duration_seconds"
    )
    at_60 = [
        s.value
        for s in durations.samples
        if s.name.endswith("_bucket")
        and s.labels == {"le": "60.0", "model": "flux-schnell", "outcome": "completed"}
    ]
    assert at_60 and at_60[0] >= 1, durations.samples
    # The gateway's routes are templates.
    assert 'route="/v1/generations/{generation_id}"' in texts["gateway"]
