"""The catalog's FastAPI app: lifespan wiring of engine, NATS, query endpoints, consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from picture.catalog import handlers, queries
from picture.catalog.settings import CatalogSettings
from picture.common import contracts as c
from picture.common.database import build_engine
from picture.common.messaging import Bus, ConsumerOptions, Route
from picture.common.observability import HttpMetricsMiddleware, ops_router
from picture.common.problems import install_problem_handlers
from picture.common.service import Resources

SERVICE = "catalog"


def create_app(settings: CatalogSettings) -> FastAPI:
    res = Resources()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings.database_url, application_name=SERVICE)
        bus = await Bus.connect(settings.nats_url, SERVICE, settings.query_timeout_seconds)
        res.engine, res.bus = engine, bus
        try:
            await bus.ensure_streams()

            async def get_model(req: c.GetModelRequest) -> c.ModelReply:
                return c.ModelReply(model=await queries.get_model(engine, req.name))

            async def list_models(req: c.ListModelsRequest) -> c.ModelListReply:
                return c.ModelListReply(models=await queries.list_models(engine, req.include_inactive))

            async def get_image(req: c.GetImageRequest) -> c.ImageReply:
                return c.ImageReply(image=await queries.get_image(engine, req.image_id, req.viewer_id))

            await bus.serve(c.GET_MODEL, get_model)
            await bus.serve(c.LIST_MODELS, list_models)
            await bus.serve(c.GET_IMAGE, get_image)
            await bus.start_consumer(
                c.CMD_STREAM,
                "catalog-commands",
                [Route(c.RECORD_IMAGE, partial(handlers.record_image, engine, bus))],
                options=ConsumerOptions(ack_wait_seconds=30, max_deliver=20),
            )
            yield
        finally:
            await bus.close()
            await engine.dispose()

    app = FastAPI(title="Picture catalog", lifespan=lifespan)
    app.add_middleware(HttpMetricsMiddleware, service=SERVICE)
    install_problem_handlers(app)
    app.include_router(ops_router(res.readiness_checks()))
    return app
