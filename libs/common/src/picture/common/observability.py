"""Logging, health, metrics and tracing set-up shared by every service.

- :func:`configure_logging`: one JSON object per line on stderr (or plain text in a terminal).
- :func:`ops_router`: ``/healthz`` (the process is alive), ``/readyz`` (every dependency check
  passes; 503 with the failing names otherwise), ``/metrics`` (Prometheus text format, or
  OpenMetrics when the scraper asks for it: only OpenMetrics carries exemplars).
- :class:`HttpMetricsMiddleware`: RED metrics for HTTP with the route template as label
  (never the raw path, so ids do not explode cardinality); each latency observation carries
  the request's trace id as exemplar (a panel's point leads to its trace). SERVER spans come from FastAPI's
  native telemetry (configured by :data:`FASTAPI_TELEMETRY`: W3C extraction, route-named spans,
  probes and /metrics not traced); for an app without it, this middleware makes the span.
- :func:`configure_tracing`: an OpenTelemetry TracerProvider named after the service (exporters:
  :mod:`picture.common.telemetry`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[bool]]
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
http_tracer = trace.get_tracer("picture.common.http")


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


# ``FastAPI(telemetry=FASTAPI_TELEMETRY)``: server spans only (RED metrics are ours, logs are
# ours), nothing for probes and scrapes.
FASTAPI_TELEMETRY: TelemetryConfig = {
    "exclude": _untraced,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
}

HTTP_REQUESTS = Counter(
    "picture_http_requests_total",
    "HTTP requests answered, by service, method, route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "picture_http_request_duration_seconds",
    "HTTP request duration, by service, method and route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def trace_exemplar(span_context: trace.SpanContext | None = None) -> dict[str, str] | None:
    """``{"trace_id": ...}`` of ``span_context`` (default: the current span) for a histogram
    observation, or None outside a sampled trace."""
    context = span_context or trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


def carrier_exemplar(carrier: Mapping[str, str] | None) -> dict[str, str] | None:
    """The exemplar of a trace context kept as W3C headers (work that outlived its request)."""
    if not carrier:
        return None
    span_context = trace.get_current_span(propagate.extract(dict(carrier))).get_span_context()
    return trace_exemplar(span_context) if span_context.is_valid else None


def configure_logging(service: str, level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("nats", "uvicorn.access", "aiobotocore", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_tracing(service: str, processors: tuple[SpanProcessor, ...] = ()) -> TracerProvider:
    """Install a TracerProvider for ``service``; exporters are passed in as span processors."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def ops_router(checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        failing = [name for name, check in checks.items() if not await _safe(check)]
        if failing:
            response.status_code = 503
            return {"status": "unavailable", "failing": failing}
        return {"status": "ok"}

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(REGISTRY), headers={"Content-Type": content_type})

    return router


async def _safe(check: ReadinessCheck) -> bool:
    try:
        return await check()
    except Exception:
        return False


class HttpMetricsMiddleware:
    """Pure ASGI middleware (no per-request task overhead): RED metrics and a SERVER span."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        method = scope.get("method", "GET")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # FastAPI's native telemetry marks the scope (None when it skipped the request).
        traced = "fastapi.telemetry" not in scope and not _untraced(scope)
        token = otel_context.attach(propagate.extract(_headers(scope))) if traced else None
        span = (
            http_tracer.start_span(
                method, kind=trace.SpanKind.SERVER, attributes={"http.request.method": method}
            )
            if traced
            else None
        )
        try:
            if span is None:
                await self.app(scope, receive, send_wrapper)
            else:
                with trace.use_span(
                    span, end_on_exit=False, record_exception=True, set_status_on_exception=True
                ):
                    await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_DURATION.labels(self.service, method, template).observe(
                time.perf_counter() - started,
                trace_exemplar(span.get_span_context() if span is not None else None),
            )
            if span is not None:
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)
                span.end()
            if token is not None:
                otel_context.detach(token)


def _headers(scope: Scope) -> dict[str, str]:
    return {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope.get("headers", ())
        if key in (b"traceparent", b"tracestate", b"baggage")
    }
