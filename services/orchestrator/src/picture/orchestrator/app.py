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
from picture.common.observability import FASTAPI_TELEMETRY, HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.service import Resources
from picture.common.telemetry import configure_telemetry
from picture.orchestrator import batches, events, intake, lifecycle, scheduler, views
from picture.orchestrator.context import Context
from picture.orchestrator.outbox import OutboxRelay, outbox
from picture.orchestrator.settings import OrchestratorSettings

SERVICE = "orchestrator"


def create_app(settings: OrchestratorSettings) -> FastAPI:
    res = Resources()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_telemetry(SERVICE, settings)  # tracing: provider, exporters, httpx spans
        engine = build_engine(
            settings.database_url, pool_size=settings.database_pool_size, application_name=SERVICE
        )
        bus = await Bus.connect(settings.nats_url, SERVICE, settings.query_timeout_seconds)
        res.engine, res.bus = engine, bus
        relay = OutboxRelay(engine, bus, outbox, settings.outbox_batch_size, settings.outbox_idle_seconds)
        ctx = Context(engine, relay, settings)
        writer = intake.GenerationWriter(ctx)
        tasks = [asyncio.create_task(relay.run(), name="outbox-relay")]
        try:
            await bus.ensure_streams()
            await bus.serve(c.GET_GENERATION, partial(views.get_generation, ctx))
            await bus.serve(c.CANCEL_GENERATION, partial(lifecycle.cancel_generation, ctx))
            await bus.serve(c.LIST_GENERATIONS, partial(views.list_generations, ctx))
            await bus.serve(c.ERROR_STATS, partial(views.error_stats, ctx))
            await bus.serve(c.CREATE_BATCH, partial(batches.create_batch, ctx))
            await bus.serve(c.GET_BATCH, partial(batches.get_batch, ctx))
            await bus.serve(c.LIST_BATCHES, partial(batches.list_batches, ctx))
            await bus.serve(c.CANCEL_BATCH, partial(batches.cancel_batch, ctx))
            await bus.serve(c.RETRY_BATCH, partial(batches.retry_failed, ctx))
            await bus.serve(c.DELETE_BATCH, partial(batches.delete_batch, ctx))
            await bus.start_consumer(
                c.CMD_STREAM,
                "orchestrator-create",
                [Route(c.CREATE_GENERATION, partial(intake.on_create, writer))],
                options=ConsumerOptions(ack_wait_seconds=30, max_deliver=50, max_in_flight=256),
            )
            await bus.start_consumer(
                c.EVT_STREAM,
                "orchestrator-events",
                [
                    Route(c.PREDICTION_UPDATED, partial(events.on_prediction, ctx)),
                    Route(c.MEDIA_STORED, partial(events.on_media_stored, ctx)),
                    Route(c.MEDIA_FAILED, partial(events.on_media_failed, ctx)),
                    Route(c.IMAGE_CREATED, partial(events.on_image_created, ctx)),
                ],
                options=ConsumerOptions(ack_wait_seconds=30, max_deliver=50),
                on_poison=partial(events.on_poison, ctx),
            )
            tasks.append(asyncio.create_task(scheduler.run_scheduler(ctx), name="scheduler"))
            tasks.append(asyncio.create_task(scheduler.run_sweeper(ctx), name="sweeper"))
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await bus.close()
            await engine.dispose()

    app = FastAPI(title="Picture orchestrator", lifespan=lifespan, telemetry=FASTAPI_TELEMETRY)
    app.add_middleware(HttpMetricsMiddleware, service=SERVICE)
    install_problem_handlers(app)
    app.include_router(ops_router(res.readiness_checks()))
    return app
