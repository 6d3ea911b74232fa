"""Running a service: uvicorn on the service's FastAPI app, with graceful shutdown.

A service's ``__main__`` parses ``serve`` / ``migrate`` and calls :func:`serve` here. The
app's lifespan builds every resource (engine, NATS connection, httpx client) and closes them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.database import ping
from picture.common.intake import deadline_protocol
from picture.common.messaging import Bus
from picture.common.migrations import upgrade
from picture.common.observability import ReadinessCheck, configure_logging
from picture.common.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging, configured before
        access_log=False,
        lifespan="on",
        loop="auto",  # uvloop when installed (it is a dependency on Linux)
        # httptools (a dependency), with deadlines on headers and bodies
        http=deadline_protocol(settings.http_header_timeout_seconds, settings.http_body_timeout_seconds),
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


class Resources:
    """A service's long-lived resources, filled in by its lifespan; readiness reads them."""

    def __init__(self) -> None:
        self.bus: Bus | None = None
        self.engine: AsyncEngine | None = None

    async def nats_ready(self) -> bool:
        return self.bus is not None and self.bus.is_connected

    async def database_ready(self) -> bool:
        return self.engine is not None and await ping(self.engine)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {"nats": self.nats_ready}
        checks["database"] = self.database_ready
        return checks


def run_cli(
    service: str,
    settings_factory: Callable[[], S],
    app_factory: Callable[[S], FastAPI],
    migrations: str | None,
) -> None:
    """The command line of every service: ``picture-<service> serve | migrate``.

    ``migrate`` upgrades the service's own schema (``migrations`` like
    "picture.catalog:migrations") and exits: migrations are a separate step, never run at start.
    """
    parser = argparse.ArgumentParser(prog=f"picture-{service}")
    parser.add_argument("command", choices=["serve", "migrate"] if migrations else ["serve"])
    args = parser.parse_args()
    settings = settings_factory()
    configure_logging(service, settings.log_level, settings.log_json)
    if args.command == "migrate":
        assert migrations is not None
        upgrade(migrations, settings.database_url)
    else:
        serve(app_factory(settings), settings)
