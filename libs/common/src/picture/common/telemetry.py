"""Tracing set-up of a service: one TracerProvider per process, its exporters, HTTP client spans.

:func:`configure_telemetry` is called first thing in every service's lifespan:

- the provider is named after the service (``OTEL_SERVICE_NAME`` wins when set);
- ``PICTURE_OTLP_ENDPOINT`` (e.g. ``http://otel-collector:4318``): spans are batched to
  ``<endpoint>/v1/traces`` over OTLP/HTTP (protobuf);
- ``PICTURE_TRACE_FILE`` (tests, debugging): every span is appended to that file as one JSON
  object per line (:class:`JsonLinesSpanExporter`); off by default;
- outgoing httpx requests (Replicate calls, media downloads) get CLIENT spans and carry W3C
  ``traceparent`` (opentelemetry-instrumentation-httpx).

Server spans for HTTP requests come from :class:`picture.common.observability.HttpMetricsMiddleware`;
NATS spans from :mod:`picture.common.messaging`. Without any exporter the provider still hands out
real span contexts, so logs carry trace ids and W3C context still flows between services.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from picture.common.observability import configure_tracing
from picture.common.settings import ServiceSettings

log = logging.getLogger(__name__)


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (several processes may share it).

    Fields: trace_id, span_id, parent_span_id (hex; null for a root), name, kind (SERVER,
    CLIENT, PRODUCER, CONSUMER, INTERNAL), service, attributes, start, end (ns since epoch),
    status.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    @staticmethod
    def to_record(span: ReadableSpan) -> dict[str, Any]:
        context = span.get_span_context()
        assert context is not None
        parent = span.parent
        return {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
            "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
            "name": span.name,
            "kind": span.kind.name,
            "service": span.resource.attributes.get("service.name"),
            "attributes": dict(span.attributes or {}),
            "start": span.start_time,
            "end": span.end_time,
            "status": span.status.status_code.name,
        }

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(self.to_record(span), default=str) + "\n" for span in spans)
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            # One write per batch, flushed: readers see whole lines.
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class Telemetry:
    service: str
    provider: TracerProvider

    def flush(self, timeout_millis: int = 5000) -> None:
        """Export what is buffered (the provider also shuts down at process exit)."""
        self.provider.force_flush(timeout_millis)


_current: Telemetry | None = None
_lock = threading.Lock()


def service_name(default: str) -> str:
    return os.environ.get("OTEL_SERVICE_NAME", "").strip() or default


def otlp_traces_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def build_processors(settings: ServiceSettings) -> tuple[SpanProcessor, ...]:
    processors: list[SpanProcessor] = []
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processors.append(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_url(settings.otlp_endpoint)))
        )
    if settings.trace_file:
        processors.append(SimpleSpanProcessor(JsonLinesSpanExporter(settings.trace_file)))
    return tuple(processors)


def configure_telemetry(service: str, settings: ServiceSettings) -> Telemetry:
    """Install the process's TracerProvider once (later calls return the first one: OpenTelemetry
    allows one global provider per process, and tests build several apps in one process)."""
    global _current
    with _lock:
        if _current is not None:
            return _current
        name = service_name(service)
        provider = configure_tracing(name, build_processors(settings))
        instrumentor = HTTPXClientInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
        _current = Telemetry(name, provider)
        log.debug(
            "tracing configured for %s (otlp: %s, file: %s)",
            name,
            settings.otlp_endpoint or "off",
            settings.trace_file or "off",
        )
        return _current


def capture_trace_context() -> dict[str, str]:
    """The current trace context as W3C headers, to keep with work that continues later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_context_from(carrier: dict[str, str]) -> contextvars.Context:
    """A copy of the current contextvars with ``carrier``'s trace context attached: run work
    that belongs to an earlier trace in it (``asyncio.create_task(coro, context=...)``)."""
    ctx = contextvars.copy_context()
    if carrier:
        ctx.run(otel_context.attach, propagate.extract(carrier))
    return ctx
