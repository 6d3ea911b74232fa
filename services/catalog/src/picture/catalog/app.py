"""The catalog's FastAPI app: its query endpoints, command consumer and outbox relay on the
shared service skeleton (engine, NATS, readiness)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import accounts, gallery, images, imports, likes, models, profiles, tags, templates
from picture.catalog.outbox import OutboxRelay, outbox
from picture.catalog.settings import CatalogSettings
from picture.common import contracts as c
from picture.common.contracts import M
from picture.common.messaging import Delivery, QueryFailed, Route
from picture.common.service import ServiceScope, service_app

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
    (c.REFERENCED_KEYS, images.referenced_keys),
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
    (c.IMPORT_PROFILE, imports.import_profile),
    (c.IMPORT_TAG, imports.import_tag),
    (c.IMPORT_IMAGE, imports.import_image),
    (c.IMPORT_TEMPLATE, imports.import_template),
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
    @asynccontextmanager
    async def run(scope: ServiceScope) -> AsyncIterator[None]:
        engine, bus = scope.engine, scope.bus
        relay = OutboxRelay(engine, bus, outbox, batch_size=100, idle_seconds=5.0)

        async def bulk_images(req: c.BulkImagesRequest) -> c.BulkImagesReply:
            reply, queued = await images.bulk_images(engine, req)
            if queued:
                relay.notify()
            return reply

        await bus.serve(c.BULK_IMAGES, bulk_images)
        for query, function in QUERIES:
            await bus.serve(query, partial(_invalid_data_as_invalid, function, engine))
        scope.start_task(relay.run())
        await bus.start_declared(
            c.CATALOG_COMMANDS,
            [
                Route(c.RECORD_IMAGE, _command(partial(images.record_image, engine, bus))),
                Route(c.ENSURE_PROFILE, _command(partial(profiles.ensure_profile, engine))),
                Route(c.TEMPLATE_USED, _command(partial(templates.template_used, engine))),
                Route(c.IMAGE_DOWNLOADED, _command(partial(images.count_download, engine))),
            ],
        )
        await bus.start_declared(
            c.CATALOG_ACCOUNTS, [Route(c.ACCOUNT_DELETED, _command(partial(accounts.delete_account, engine)))]
        )
        yield

    return service_app(SERVICE, settings, run, title="Picture catalog")
