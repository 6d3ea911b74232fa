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

from picture.catalog import gallery, images, likes, models, profiles, tags, templates
from picture.catalog.outbox import OutboxRelay, outbox
from picture.catalog.settings import CatalogSettings
from picture.common import contracts as c
from picture.common.contracts import M
from picture.common.database import build_engine
from picture.common.messaging import Bus, ConsumerOptions, Delivery, QueryFailed, Route
from picture.common.observability import FASTAPI_TELEMETRY, HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.service import Resources
from picture.common.telemetry import configure_telemetry

SERVICE = "catalog"

# Queries answered by one function each: (query, function(engine, request) -> reply).
QUERIES: tuple[tuple[c.Query[Any, Any], Callable[[AsyncEngine, Any], Awaitable[Any]]], ...] = (
    (c.GET_MODEL, models.get_model),
    (c.LIST_MODELS, models.list_models),
    (c.UPDATE_MODEL, models.update_model),
    (c.GET_IMAGE, images.get_image),
    (c.GET_IMAGE_DETAIL, images.get_image_detail),
    (c.UPDATE_IMAGE, images.update_image),
    (c.RECORD_UPLOAD, images.record_upload),
    (c.LIST_IMAGES, gallery.list_images),
    (c.EXPLORE, gallery.explore),
    (c.LIKE_IMAGE, likes.like),
    (c.LIST_TAGS, tags.list_tags),
    (c.CREATE_TAG, tags.create_tag),
    (c.DELETE_TAG, tags.delete_tag),
    (c.IMAGE_TAG, tags.image_tag),
    (c.GET_PROFILE, profiles.get_profile),
    (c.UPDATE_PROFILE, profiles.update_profile),
    (c.LIST_TEMPLATES, templates.list_templates),
    (c.CREATE_TEMPLATE, templates.create_template),
    (c.GET_TEMPLATE, templates.get_template),
    (c.UPDATE_TEMPLATE, templates.update_template),
    (c.DELETE_TEMPLATE, templates.delete_template),
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


def _command(handle: Callable[[M], Awaitable[None]]) -> Callable[[Delivery[M]], Awaitable[None]]:
    """A consumer route's handler from a function of the command alone."""

    async def on_delivery(delivery: Delivery[M]) -> None:
        await handle(delivery.message)

    return on_delivery


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

            async def bulk_images(req: c.BulkImagesRequest) -> c.BulkImagesReply:
                reply, queued = await images.bulk_images(engine, req)
                if queued:
                    relay.notify()
                return reply

            await bus.serve(c.BULK_IMAGES, bulk_images)
            for query, function in QUERIES:
                await bus.serve(query, partial(_invalid_data_as_invalid, function, engine))
            relay_task = asyncio.create_task(relay.run())
            await bus.start_consumer(
                c.CMD_STREAM,
                "catalog-commands",
                [
                    Route(c.RECORD_IMAGE, _command(partial(images.record_image, engine, bus))),
                    Route(c.ENSURE_PROFILE, _command(partial(profiles.ensure_profile, engine))),
                    Route(c.TEMPLATE_USED, _command(partial(templates.template_used, engine))),
                    Route(c.IMAGE_DOWNLOADED, _command(partial(images.count_download, engine))),
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
