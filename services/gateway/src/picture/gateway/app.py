"""The gateway's FastAPI app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from picture.common.database import build_pool
from picture.common.intake import BodySizeLimit
from picture.common.observability import FASTAPI_TELEMETRY, HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.retention import run_periodically
from picture.common.service import Resources, service_lifespan
from picture.gateway.auth import TokenBeforeBody, TokenVerifier
from picture.gateway.backend import Backend
from picture.gateway.limits import Limiter
from picture.gateway.quota import start_background
from picture.gateway.retention import retention_round
from picture.gateway.routes import (
    admin,
    batches,
    events,
    generations,
    images,
    library,
    me,
    models,
    replicate_webhooks,
)
from picture.gateway.routes.account import router as account_router
from picture.gateway.routes.compat import router as compat_router
from picture.gateway.routes.replicate_webhooks import router as replicate_webhooks_router
from picture.gateway.routes.uploads import ENVELOPE_BYTES
from picture.gateway.routes.uploads import router as uploads_router
from picture.gateway.routes.user_limits import router as user_limits_router
from picture.gateway.settings import GatewaySettings
from picture.gateway.state import GatewayState

SERVICE = "gateway"
UPLOADS_PATH = "/v1/uploads"
REPLICATE_WEBHOOK_PATH = "/v1/webhooks/replicate"  # signed by Replicate: no access token

DESCRIPTION = """
Picture's public API. Submit a generation (`POST /v1/generations`, answered at once with 202
and an id), then follow it (`GET /v1/generations/{id}`). Errors are RFC 9457 problem+json
documents whose `field` names the offending input.

Authentication: a Supabase access token as `Authorization: Bearer <token>`.
"""


class RequestIdMiddleware:
    """X-Request-ID (the client's, or a new one) and X-Trace-ID on every HTTP response.

    Pure ASGI: ``@app.middleware("http")`` runs each request's downstream app in a separate
    task with a memory stream, which cost more than the request's own work on short endpoints.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id")
        request_id = (incoming or str(uuid.uuid4()))[:128]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                span = trace.get_current_span().get_span_context()
                if span.is_valid:
                    headers["X-Trace-ID"] = format(span.trace_id, "032x")
            await send(message)

        await self.app(scope, receive, send_with_ids)


def create_app(settings: GatewaySettings) -> FastAPI:
    res = Resources()
    verifier = TokenVerifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the streams are ensured by start_background
        async with service_lifespan(SERVICE, settings, res, app, ensure_streams=False) as scope:
            engine, bus = scope.engine, scope.bus
            http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0), follow_redirects=False)
            pool = await build_pool(
                settings.database_url, max_size=settings.database_pool_size, application_name=SERVICE
            )
            scope.after_bus.push_async_callback(pool.close)  # the event consumers use it
            limiter = Limiter(engine, settings, pool=pool)
            own = await start_background(bus, limiter, verifier)
            scope.start_task(
                run_periodically(
                    partial(retention_round, engine, settings), settings.retention_interval_seconds
                ),
                name="retention",
            )
            app.state.gateway = GatewayState(  # read through picture.gateway.state.gateway_state
                settings=settings,
                verifier=verifier,
                engine=engine,
                http=http,
                backend=Backend(bus, settings.model_cache_seconds, own.views),
                limiter=limiter,
                views=own.views,
                acceptance=own.acceptance,
                hub=own.hub,
            )
            try:
                yield
            finally:
                # The event handlers in flight finish (or are handed back) while all is open.
                await res.stop(settings.shutdown_grace_seconds)
                await own.stop()
                await http.aclose()

    app = FastAPI(
        title="Picture API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,
    )
    install_problem_handlers(app)

    # innermost first: the token is checked before the size, and both before a body is read
    app.add_middleware(
        BodySizeLimit,
        default_cap=settings.max_json_body_bytes,
        caps={
            UPLOADS_PATH: settings.max_upload_bytes + ENVELOPE_BYTES,
            REPLICATE_WEBHOOK_PATH: replicate_webhooks.MAX_BODY_BYTES,
        },
    )
    app.add_middleware(TokenBeforeBody, verifier=verifier, open_paths=frozenset({REPLICATE_WEBHOOK_PATH}))
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID"],
        )
    app.add_middleware(HttpMetricsMiddleware, service=SERVICE)
    app.include_router(ops_router(res.readiness_checks()))
    app.include_router(generations.router)
    app.include_router(events.router)  # SSE, WebSocket
    app.include_router(me.router)
    app.include_router(admin.router)
    app.include_router(batches.router)
    app.include_router(models.router)
    app.include_router(images.router)
    app.include_router(uploads_router)
    app.include_router(library.router)
    app.include_router(replicate_webhooks_router)
    app.include_router(compat_router)  # old clients' generate-image (deprecated)
    app.include_router(account_router)  # DELETE /v1/me, GET /v1/me/export
    app.include_router(user_limits_router)  # PUT /v1/admin/users/{id}/limits
    return app
