"""The catalog's FastAPI app: lifespan wiring of engine, NATS, query endpoints, consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import handlers, library, queries
from picture.catalog.outbox import OutboxRelay, outbox
from picture.catalog.settings import CatalogSettings
from picture.common import contracts as c
from picture.common.database import build_engine
from picture.common.messaging import Bus, ConsumerOptions, QueryFailed, Route
from picture.common.observability import FASTAPI_TELEMETRY, HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.service import Resources
from picture.common.telemetry import configure_telemetry

SERVICE = "catalog"

# Queries answered by one library function each: (query, function(engine, request) -> reply).
LIBRARY_QUERIES: tuple[tuple[c.Query[Any, Any], Callable[[AsyncEngine, Any], Awaitable[Any]]], ...] = (
    (c.LIST_IMAGES, library.list_images),
    (c.EXPLORE, library.explore),
    (c.GET_IMAGE_DETAIL, library.get_image_detail),
    (c.UPDATE_IMAGE, library.update_image),
    (c.IMAGE_TAG, library.image_tag),
    (c.LIKE_IMAGE, library.like),
    (c.LIST_TAGS, library.list_tags),
    (c.CREATE_TAG, library.create_tag),
    (c.DELETE_TAG, library.delete_tag),
    (c.GET_PROFILE, library.get_profile),
    (c.UPDATE_PROFILE, library.update_profile),
    (c.LIST_TEMPLATES, library.list_templates),
    (c.CREATE_TEMPLATE, library.create_template),
    (c.GET_TEMPLATE, library.get_template),
    (c.UPDATE_TEMPLATE, library.update_template),
    (c.DELETE_TEMPLATE, library.delete_template),
    (c.UPDATE_MODEL, library.update_model),
    (c.RECORD_UPLOAD, library.record_upload),
)


async def _invalid_data_as_invalid(
    function: Callable[[AsyncEngine, Any], Awaitable[Any]], engine: AsyncEngine, request: Any
) -> Any:
    """Input PostgreSQL refuses as data (a NUL character in a text, say) is the caller's error."""
    try:
        return await function(engine, request)
    except DBAPIError as exc:
        if not str(getattr(exc.orig, "sqlstate", "") or "").startswith("22"):  # class 22: data exception
            raise
        raise QueryFailed(
            c.QueryErrorCode.INVALID, "the input holds characters that cannot be stored"
        ) from exc


def create_app(settings: CatalogSettings) -> FastAPI:
    res = Resources()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_telemetry(SERVICE, settings)  # tracing: provider, exporters, httpx spans
        engine = build_engine(
            settings.database_url, pool_size=settings.database_pool_size, application_name=SERVICE
        )
        bus = await Bus.connect(settings.nats_url, SERVICE, settings.query_timeout_seconds)
        res.engine, res.bus = engine, bus
        relay = OutboxRelay(engine, bus, outbox, batch_size=100, idle_seconds=5.0)
        relay_task: asyncio.Task[None] | None = None
        try:
            await bus.ensure_streams()

            async def get_model(req: c.GetModelRequest) -> c.ModelReply:
                return c.ModelReply(model=await queries.get_model(engine, req.name))

            async def list_models(req: c.ListModelsRequest) -> c.ModelListReply:
                return c.ModelListReply(models=await queries.list_models(engine, req.include_inactive))

            async def get_image(req: c.GetImageRequest) -> c.ImageReply:
                return c.ImageReply(image=await queries.get_image(engine, req.image_id, req.viewer_id))

            async def bulk_images(req: c.BulkImagesRequest) -> c.BulkImagesReply:
                reply, queued = await library.bulk_images(engine, req)
                if queued:
                    relay.notify()
                return reply

            await bus.serve(c.GET_MODEL, get_model)
            await bus.serve(c.LIST_MODELS, list_models)
            await bus.serve(c.GET_IMAGE, get_image)
            await bus.serve(c.BULK_IMAGES, bulk_images)
            for query, function in LIBRARY_QUERIES:
                await bus.serve(query, partial(_invalid_data_as_invalid, function, engine))
            relay_task = asyncio.create_task(relay.run())
            await bus.start_consumer(
                c.CMD_STREAM,
                "catalog-commands",
                [
                    Route(c.RECORD_IMAGE, partial(handlers.record_image, engine, bus)),
                    Route(c.ENSURE_PROFILE, partial(handlers.ensure_profile, engine)),
                    Route(c.TEMPLATE_USED, partial(handlers.template_used, engine)),
                    Route(c.IMAGE_DOWNLOADED, partial(handlers.image_downloaded, engine)),
                ],
                options=ConsumerOptions(ack_wait_seconds=30, max_deliver=20),
            )
            yield
        finally:
            if relay_task is not None:
                relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay_task
            await bus.close()
            await engine.dispose()

    app = FastAPI(title="Picture catalog", lifespan=lifespan, telemetry=FASTAPI_TELEMETRY)
    app.add_middleware(HttpMetricsMiddleware, service=SERVICE)
    install_problem_handlers(app)
    app.include_router(ops_router(res.readiness_checks()))
    return app
