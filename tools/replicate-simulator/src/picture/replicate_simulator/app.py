"""FastAPI application factory and lifespan (HTTP client, stores, background tasks)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from picture.replicate_simulator import api, control
from picture.replicate_simulator.errors import install_error_handlers
from picture.replicate_simulator.files import FileStore
from picture.replicate_simulator.journal import PredictionJournal
from picture.replicate_simulator.runtime import RuntimeControl, Stats
from picture.replicate_simulator.settings import SimulatorSettings
from picture.replicate_simulator.state import SimulatorState
from picture.replicate_simulator.store import PredictionStore
from picture.replicate_simulator.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)


def create_app(settings: SimulatorSettings | None = None) -> FastAPI:
    """Build the simulator app; resources are created when its lifespan starts."""
    resolved = settings if settings is not None else SimulatorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stats = Stats()
        control_state = RuntimeControl(resolved)

        def on_webhook_result(ok: bool) -> None:
            if ok:
                stats.webhooks_sent += 1
            else:
                stats.webhooks_failed += 1

        async with httpx.AsyncClient(
            timeout=resolved.webhook_timeout_seconds, follow_redirects=False
        ) as client:
            dispatcher = WebhookDispatcher(
                client,
                resolved.webhook_secret,
                max_attempts=resolved.webhook_max_attempts,
                backoff_seconds=resolved.webhook_backoff_seconds,
                on_result=on_webhook_result,
                dropped=lambda: control_state.config.drop_webhooks,
            )
            data_dir = resolved.data_dir
            files = FileStore(resolved.output_ttl_seconds, resolved.max_files, data_dir)
            store = PredictionStore(
                base_url=resolved.base_url,
                control=control_state,
                stats=stats,
                files=files,
                dispatcher=dispatcher,
                seed=resolved.seed,
                max_predictions=resolved.max_predictions,
                retention_seconds=resolved.output_ttl_seconds,
                run_timeout_seconds=resolved.run_timeout_seconds,
                journal=PredictionJournal(data_dir) if data_dir is not None else None,
            )
            resumed = store.resume()
            if resumed:
                logger.info("resumed %d predictions that were in flight", resumed)
            app.state.simulator = SimulatorState(resolved, control_state, stats, files, store)
            logger.info("replicate simulator ready at %s", resolved.base_url)
            try:
                yield
            finally:
                await store.aclose()
                await dispatcher.aclose()
                del app.state.simulator

    app = FastAPI(
        title="Replicate API simulator",
        lifespan=lifespan,
        docs_url="/_control/docs",
        redoc_url=None,
        openapi_url="/_control/openapi.json",
    )
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(api.delivery_router)
    app.include_router(control.router)

    @app.get("/healthz", include_in_schema=False)
    @app.get("/readyz", include_in_schema=False)
    async def health() -> dict[str, str]:
        # Process checks for the launcher and orchestrators; not part of Replicate's API.
        return {"status": "ok"}

    return app
