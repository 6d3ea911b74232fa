"""The orchestrator's FastAPI app: its queries, consumers, outbox relay, scheduler and sweeper
on the shared service skeleton (engine, NATS, readiness)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from picture.common import contracts as c
from picture.common.messaging import Route
from picture.common.retention import run_periodically
from picture.common.service import ServiceScope, service_app
from picture.orchestrator import (
    accounts,
    batches,
    events,
    imports,
    intake,
    lifecycle,
    retention,
    scheduler,
    views,
)
from picture.orchestrator.context import Context
from picture.orchestrator.outbox import OutboxRelay, outbox
from picture.orchestrator.settings import OrchestratorSettings

SERVICE = "orchestrator"


def create_app(settings: OrchestratorSettings) -> FastAPI:
    @asynccontextmanager
    async def run(scope: ServiceScope) -> AsyncIterator[None]:
        engine, bus = scope.engine, scope.bus
        relay = OutboxRelay(engine, bus, outbox, settings.outbox_batch_size, settings.outbox_idle_seconds)
        ctx = Context(engine, relay, settings)
        writer = intake.GenerationWriter(ctx)
        scope.start_task(relay.run(), name="outbox-relay")
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
        await bus.serve(c.IMPORT_GENERATION, partial(imports.import_generation, ctx))
        await bus.serve(c.IMPORT_BATCH, partial(imports.import_batch, ctx))
        await bus.start_declared(
            c.ORCHESTRATOR_CREATE,
            [Route(c.CREATE_GENERATION, partial(intake.on_create, writer))],
            max_in_flight=256,
        )
        await bus.start_declared(
            c.ORCHESTRATOR_EVENTS,
            [
                Route(c.PREDICTION_UPDATED, partial(events.on_prediction, ctx)),
                Route(c.MEDIA_STORED, partial(events.on_media_stored, ctx)),
                Route(c.MEDIA_FAILED, partial(events.on_media_failed, ctx)),
                Route(c.IMAGE_CREATED, partial(events.on_image_created, ctx)),
            ],
            on_poison=partial(events.on_poison, ctx),
        )
        await bus.start_declared(
            c.ORCHESTRATOR_ACCOUNTS, [Route(c.ACCOUNT_DELETED, partial(accounts.on_account_deleted, ctx))]
        )
        scope.start_task(scheduler.run_scheduler(ctx), name="scheduler")
        scope.start_task(scheduler.run_sweeper(ctx), name="sweeper")
        scope.start_task(
            run_periodically(
                partial(retention.retention_round, engine, settings), settings.retention_interval_seconds
            ),
            name="retention",
        )
        yield

    return service_app(SERVICE, settings, run, title="Picture orchestrator")
