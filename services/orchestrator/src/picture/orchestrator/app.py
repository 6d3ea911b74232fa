"""The orchestrator's FastAPI app: lifespan wiring of engine, NATS, queries, consumers, relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from picture.common import contracts as c
from picture.common.database import build_engine
from picture.common.messaging import Bus, ConsumerOptions, Route
from picture.common.observability import HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.service import Resources
from picture.orchestrator import handlers
from picture.orchestrator.outbox import OutboxRelay
from picture.orchestrator.settings import OrchestratorSettings

SERVICE = "orchestrator"


def create_app(settings: OrchestratorSettings) -> FastAPI:
    res = Resources()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings.database_url, application_name=SERVICE)
        bus = await Bus.connect(settings.nats_url, SERVICE, settings.query_timeout_seconds)
        res.engine, res.bus = engine, bus
        relay = OutboxRelay(engine, bus, settings.outbox_batch_size, settings.outbox_idle_seconds)
        ctx = handlers.Context(engine, relay, settings)
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        try:
            await bus.ensure_streams()
            await bus.serve(c.CREATE_GENERATION, partial(handlers.create_generation, ctx))
            await bus.serve(c.GET_GENERATION, partial(handlers.get_generation, ctx))
            await bus.start_consumer(
                c.EVT_STREAM,
                "orchestrator-events",
                [
                    Route(c.PREDICTION_UPDATED, partial(handlers.on_prediction, ctx)),
                    Route(c.MEDIA_STORED, partial(handlers.on_media_stored, ctx)),
                    Route(c.MEDIA_FAILED, partial(handlers.on_media_failed, ctx)),
                    Route(c.IMAGE_CREATED, partial(handlers.on_image_created, ctx)),
                ],
                options=ConsumerOptions(ack_wait_seconds=30, max_deliver=50),
            )
            yield
        finally:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            await bus.close()
            await engine.dispose()

    app = FastAPI(title="Picture orchestrator", lifespan=lifespan)
    app.add_middleware(HttpMetricsMiddleware, service=SERVICE)
    install_problem_handlers(app)
    app.include_router(ops_router(res.readiness_checks()))
    return app
