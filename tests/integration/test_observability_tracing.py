"""One generation, one trace: every service writes its spans to a file (PICTURE_TRACE_FILE) and
the spans of the generation form a single tree rooted at the gateway's POST, across HTTP,
NATS request/reply, JetStream (producer -> consumer), the outbox and the adapter's poller.

This module starts its own traced stack, so the session stack stays untraced.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import SERVICES, Ports, Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import running_stack, wait_terminal

Span = dict[str, Any]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    var_dir = tmp_path_factory.mktemp("traced-stack")
    traces = var_dir / "traces"
    extra: dict[str, dict[str, str]] = {
        service: {"PICTURE_TRACE_FILE": str(traces / f"{service}.jsonl")} for service in SERVICES
    }
    extra["replicate-simulator"] = {
        "PICTURE_SIMULATOR_LATENCY_MS": "200",
        "PICTURE_SIMULATOR_START_DELAY_MS": "20",
    }
    system = Stack(
        var_dir, Ports.free(), ensure_dev_env(var_dir / "dev.env"), pg_fsync=False, extra_env=extra
    )
    with running_stack(system):
        yield system, traces


@pytest.fixture
async def traced_api(traced: tuple[Stack, Path]) -> AsyncIterator[httpx.AsyncClient]:
    # The client plays an outside caller: no trace context of this test process may ride along
    # (an in-process app of another test may have instrumented httpx for the whole process).
    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    system, _ = traced
    token = mint_token(system.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    async with httpx.AsyncClient(
        base_url=system.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


def read_spans(traces: Path) -> list[Span]:
    spans: list[Span] = []
    for file in sorted(traces.glob("*.jsonl")):
        for line in file.read_text().splitlines():
            if line.strip():
                spans.append(json.loads(line))
    return spans


def method(span: Span) -> str:
    """HTTP method of a client span (old or stable semantic conventions)."""
    return str(span["attributes"].get("http.request.method") or span["attributes"].get("http.method"))


def url(span: Span) -> str:
    return str(span["attributes"].get("url.full") or span["attributes"].get("http.url"))


def is_complete(trace: list[Span]) -> bool:
    """The last hops have been recorded: image.created consumed by the orchestrator."""
    return any(s["name"] == "process image.created" and s["service"] == "orchestrator" for s in trace)


async def test_one_generation_is_one_trace_across_all_services(
    traced: tuple[Stack, Path], traced_api: httpx.AsyncClient
) -> None:
    _, traces = traced
    response = await traced_api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": "a lighthouse at dusk", "seed": 3}
    )
    assert response.status_code == 202, response.text
    trace_id = response.headers["x-trace-id"]
    done = await wait_terminal(traced_api, response.json()["id"])
    assert done["status"] == "completed", done

    deadline = time.monotonic() + 20
    trace = [s for s in read_spans(traces) if s["trace_id"] == trace_id]
    while not is_complete(trace):
        assert time.monotonic() < deadline, sorted({(s["service"], s["name"]) for s in trace})
        await asyncio.sleep(0.2)
        trace = [s for s in read_spans(traces) if s["trace_id"] == trace_id]

    by_id = {s["span_id"]: s for s in trace}
    names = {(s["service"], s["kind"], s["name"]) for s in trace}

    # The root is the gateway's POST server span, and only it has no parent.
    roots = [s for s in trace if s["parent_span_id"] is None]
    assert [(r["service"], r["kind"], r["name"]) for r in roots] == [
        ("gateway", "SERVER", "POST /v1/generations")
    ]
    # Every other span's parent was recorded in the same trace: the tree has no gaps.
    orphans = [
        (s["service"], s["name"]) for s in trace if s["parent_span_id"] and s["parent_span_id"] not in by_id
    ]
    assert orphans == []
    assert {s["service"] for s in trace} == set(SERVICES)

    # Every hop of the flow is in the tree.
    expected = {
        ("gateway", "PRODUCER", "publish orchestrator.create"),  # the gateway's outbox
        ("orchestrator", "CONSUMER", "process orchestrator.create"),
        ("orchestrator", "PRODUCER", "publish adapter.predict"),  # outbox relay
        ("replicate-adapter", "CONSUMER", "process adapter.predict"),
        ("replicate-adapter", "PRODUCER", "publish prediction.updated"),  # started, then terminal (poller)
        ("orchestrator", "CONSUMER", "process prediction.updated"),
        ("orchestrator", "PRODUCER", "publish media.ingest"),
        ("media", "CONSUMER", "process media.ingest"),
        ("media", "PRODUCER", "publish media.stored"),
        ("orchestrator", "CONSUMER", "process media.stored"),
        ("orchestrator", "PRODUCER", "publish catalog.record_image"),
        ("catalog", "CONSUMER", "process catalog.record_image"),
        ("catalog", "PRODUCER", "publish image.created"),
        ("orchestrator", "CONSUMER", "process image.created"),
    }
    assert expected <= names, sorted(expected - names)

    # Across NATS, every consumer span is the child of the producer span that published it.
    for span in trace:
        if span["kind"] == "CONSUMER":
            parent = by_id[span["parent_span_id"]]
            assert parent["kind"] == "PRODUCER", (span["name"], parent["name"])
            assert parent["name"].removeprefix("publish ") == span["name"].removeprefix("process ")
            destination = span["attributes"]["messaging.destination.name"]
            assert parent["attributes"]["messaging.destination.name"] == destination

    # The terminal prediction event is published by the poller or on a webhook, outside the predict
    # consumer: it is still under the predict command (re-attached context), as are the polls.
    prediction_events = [
        s for s in trace if s["service"] == "replicate-adapter" and s["name"] == "publish prediction.updated"
    ]
    assert len(prediction_events) >= 2  # started + succeeded

    # Outgoing HTTP: the adapter's Replicate calls (create, then polls) and media's download.
    adapter_http = [s for s in trace if s["service"] == "replicate-adapter" and s["kind"] == "CLIENT"]
    assert "POST" in {method(s) for s in adapter_http}, adapter_http  # the create; GETs are polls
    assert all("/predictions" in url(s) for s in adapter_http), adapter_http
    media_http = [s for s in trace if s["service"] == "media" and s["kind"] == "CLIENT"]
    assert [method(s) for s in media_http] == ["GET"], media_http
    assert all(
        s["attributes"].get("http.status_code", s["attributes"].get("http.response.status_code"))
        in (
            200,
            201,
        )
        for s in adapter_http + media_http
    )

    # Children start no earlier than the root, within clock skew of one machine.
    root = roots[0]
    assert all(s["start"] >= root["start"] for s in trace)
