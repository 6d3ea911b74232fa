"""The replicate adapter's FastAPI app: lifespan wiring of engine, NATS, the Replicate client,
the poller and the command consumer. HTTP serves only /healthz, /readyz and /metrics (Replicate
webhooks come later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from picture.common import contracts as c
from picture.common.database import build_engine
from picture.common.messaging import Bus, ConsumerOptions, Route
from picture.common.observability import HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.service import Resources
from picture.replicate_adapter.handlers import Adapter
from picture.replicate_adapter.poller import Poller
from picture.replicate_adapter.replicate import ReplicateClient, build_http_client
from picture.replicate_adapter.settings import AdapterSettings

SERVICE = "replicate-adapter"
DURABLE = "adapter-commands"


def create_app(settings: AdapterSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """``transport`` replaces the network for the Replicate client (tests)."""
    res = Resources()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        token = settings.replicate_api_token
        engine = build_engine(settings.database_url, application_name=SERVICE)
        http = build_http_client(
            settings.replicate_base_url,
            token.get_secret_value() if token else "",
            timeout=settings.replicate_timeout_seconds,
            transport=transport,
        )
        client = ReplicateClient(http, max_concurrency=settings.replicate_max_concurrency)
        bus: Bus | None = None
        poller: Poller | None = None
        try:
            bus = await Bus.connect(settings.nats_url, SERVICE, settings.query_timeout_seconds)
            res.engine, res.bus = engine, bus
            await bus.ensure_streams()
            poller = Poller(
                engine,
                bus,
                client,
                interval=settings.replicate_poll_interval_seconds,
                max_interval=settings.replicate_poll_max_interval_seconds,
                backoff=settings.replicate_poll_backoff,
            )
            await poller.start()
            adapter = Adapter(
                engine,
                bus,
                client,
                poller,
                create_lease_seconds=settings.replicate_timeout_seconds + 15,
            )
            app.state.adapter = adapter
            await bus.start_consumer(
                c.CMD_STREAM,
                DURABLE,
                [Route(c.PREDICT, adapter.predict), Route(c.CANCEL_PREDICTION, adapter.cancel)],
                options=ConsumerOptions(
                    # A create may take the whole HTTP timeout; leave room for the DB.
                    ack_wait_seconds=settings.replicate_timeout_seconds + 30,
                    max_deliver=settings.predict_max_deliveries,
                ),
                on_poison=adapter.on_poison,
            )
            yield
        finally:
            if bus is not None:
                await bus.close()  # stops the consumer first: no new work
            if poller is not None:
                await poller.stop()
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="Picture replicate adapter", lifespan=lifespan)
    app.add_middleware(HttpMetricsMiddleware, service=SERVICE)
    install_problem_handlers(app)
    app.include_router(ops_router(res.readiness_checks()))
    return app
