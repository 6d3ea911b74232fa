"""Tracing set-up: the JSON-lines span exporter, service naming, exporter selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from picture.common.settings import ServiceSettings
from picture.common.telemetry import (
    JsonLinesSpanExporter,
    build_processors,
    capture_trace_context,
    otlp_traces_url,
    service_name,
    trace_context_from,
)


def test_the_file_exporter_writes_one_json_object_per_span(tmp_path: Path) -> None:
    path = tmp_path / "spans" / "svc.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("parent", kind=trace.SpanKind.SERVER) as parent,
        tracer.start_as_current_span("child", kind=trace.SpanKind.PRODUCER) as child,
    ):
        child.set_attribute("messaging.destination.name", "picture.cmd.x")
    provider.shutdown()

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in records] == ["child", "parent"]
    child_record, parent_record = records
    context = parent.get_span_context()
    assert parent_record["trace_id"] == child_record["trace_id"] == format(context.trace_id, "032x")
    assert parent_record["parent_span_id"] is None
    assert child_record["parent_span_id"] == parent_record["span_id"] == format(context.span_id, "016x")
    assert (child_record["kind"], parent_record["kind"]) == ("PRODUCER", "SERVER")
    assert child_record["service"] == "svc"
    assert child_record["attributes"] == {"messaging.destination.name": "picture.cmd.x"}
    assert parent_record["start"] <= child_record["start"] <= child_record["end"] <= parent_record["end"]


def test_otel_service_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert service_name("media") == "media"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "picture-media")
    assert service_name("media") == "picture-media"


def test_exporters_are_off_by_default_and_chosen_by_settings(tmp_path: Path) -> None:
    assert build_processors(ServiceSettings()) == ()
    processors = build_processors(
        ServiceSettings(otlp_endpoint="http://collector:4318", trace_file=str(tmp_path / "t.jsonl"))
    )
    assert [type(p) for p in processors] == [BatchSpanProcessor, SimpleSpanProcessor]
    for processor in processors:
        processor.shutdown()
    assert otlp_traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_a_captured_context_is_continued_later() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("predict") as span:
        carrier = capture_trace_context()
    assert trace.get_current_span() is trace.INVALID_SPAN

    later = trace_context_from(carrier).run(trace.get_current_span)
    assert later.get_span_context().trace_id == span.get_span_context().trace_id
    assert later.get_span_context().span_id == span.get_span_context().span_id
    # Nothing captured: the context is left as it is.
    assert trace_context_from({}).run(trace.get_current_span) is trace.INVALID_SPAN
