"""The skeleton every service shares: its app, its lifespan, its command line.

- :func:`service_app` builds a service's FastAPI app: HTTP metrics, problem+json errors,
  ``/healthz``, ``/readyz`` (NATS and database) and ``/metrics``, then the service's routers.
  Its lifespan is :func:`service_lifespan` around the service's own ``hook``.
- :func:`service_lifespan` opens, in order: tracing, the database engine, the NATS connection
  (then the streams, and readiness sees both). It hands the hook a :class:`ServiceScope`; at
  shutdown, or when starting fails part way, everything is closed in reverse:

  1. the hook's own exit (its ``finally``), then the tasks it started with
     :meth:`ServiceScope.start_task` (newest first);
  2. the bus: consumers and responders stop, so no handler runs any more;
  3. what the hook put on :attr:`ServiceScope.after_bus` (clients handlers use), newest first;
  4. the engine.

  A service's hook looks like::

      @asynccontextmanager
      async def run(scope: ServiceScope) -> AsyncIterator[None]:
          http = build_http_client(...)
          scope.after_bus.push_async_callback(http.aclose)  # handlers use it until the bus stops
          await scope.bus.serve(QUERY, handler)
          scope.start_task(relay.run(), name="outbox-relay")
          yield

- :func:`run_cli` is every service's ``__main__``: ``picture-<service> serve | migrate``;
  :func:`serve` runs uvicorn with graceful shutdown.

Graceful shutdown (SIGTERM, within the pod's ``terminationGracePeriodSeconds`` of 30 s):

  1. at once: ``/readyz`` answers 503 (``shutdown``) and the consumers stop fetching
     (:meth:`Resources.begin_stop`); the HTTP server still serves for
     ``shutdown_delay_seconds`` (a load balancer takes the replica out meanwhile);
  2. uvicorn stops accepting connections and lets the requests in flight finish (at most
     :data:`HTTP_GRACE_SECONDS`);
  3. the lifespan ends: the message handlers in flight get until ``shutdown_grace_seconds``
     after the SIGTERM to finish; the unfinished ones are handed back (nak, redelivered at
     once to another replica; :meth:`Bus.quiesce`); then everything closes as above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.database import build_engine, ping
from picture.common.intake import deadline_protocol
from picture.common.messaging import Bus
from picture.common.migrations import upgrade
from picture.common.observability import (
    FASTAPI_TELEMETRY,
    HttpMetricsMiddleware,
    ReadinessCheck,
    configure_logging,
    ops_router,
)
from picture.common.problems import install_problem_handlers
from picture.common.settings import ServiceSettings
from picture.common.telemetry import configure_telemetry

S = TypeVar("S", bound=ServiceSettings)
# uvicorn's wait for the HTTP requests in flight at shutdown (SSE streams are cut after it).
HTTP_GRACE_SECONDS = 10
RESOURCES_STATE = "picture_resources"  # app.state attribute: the app's Resources


class GracefulServer(uvicorn.Server):
    """uvicorn, but the first SIGTERM/SIGINT first makes the replica unready and stops its
    consumers (:meth:`Resources.begin_stop` of the app's resources, once its lifespan has
    started), and only ``delay`` seconds later stops the HTTP server; a second signal stops it
    at once, as uvicorn does."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, delay: float) -> None:
        super().__init__(config)
        self.app = app
        self.delay = delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False

    @property
    def resources(self) -> Resources | None:
        found = getattr(self.app.state, RESOURCES_STATE, None)
        return found if isinstance(found, Resources) else None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self._stop_requested or loop is None or loop.is_closed():
            super().handle_exit(sig, frame)
            return
        self._stop_requested = True
        # A signal handler runs between two bytecodes of the loop's thread (and a test may
        # call this from another thread): hand over to the loop.
        loop.call_soon_threadsafe(self._stop_then_exit, sig, frame)

    def _stop_then_exit(self, sig: int, frame: FrameType | None) -> None:
        assert self._loop is not None
        resources = self.resources
        if resources is not None:
            resources.begin_stop()
        if resources is not None and self.delay > 0:
            self._loop.call_later(self.delay, super().handle_exit, sig, frame)
        else:
            super().handle_exit(sig, frame)


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
        timeout_graceful_shutdown=HTTP_GRACE_SECONDS,
    )
    GracefulServer(config, app, settings.shutdown_delay_seconds).run()



class Resources:
    """A service's long-lived resources, filled in by its lifespan; readiness reads them."""

    def __init__(self) -> None:
        self.bus: Bus | None = None
        self.engine: AsyncEngine | None = None
        self.stopping = False

    def begin_stop(self) -> None:
        """The start of a graceful stop: readiness fails from now on and the consumers take no
        new message (idempotent; call it from the event loop)."""
        self.stopping = True
        if self.bus is not None:
            self.bus.begin_stop()

    async def accepting(self) -> bool:
        return not self.stopping

    async def stop(self, grace: float) -> None:
        """:meth:`begin_stop`, then the handlers in flight get until ``grace`` seconds after its
        first call to finish; the unfinished ones are handed back (:meth:`Bus.quiesce`)."""
        self.begin_stop()
        if self.bus is not None:
            await self.bus.quiesce(grace)

    async def nats_ready(self) -> bool:
        return self.bus is not None and self.bus.is_connected

    async def database_ready(self) -> bool:
        return self.engine is not None and await ping(self.engine)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {"shutdown": self.accepting, "nats": self.nats_ready}
        checks["database"] = self.database_ready
        return checks


@dataclass(frozen=True)
class ServiceScope:
    """What :func:`service_lifespan` opened, handed to a service's hook."""

    app: FastAPI
    engine: AsyncEngine
    bus: Bus
    after_bus: AsyncExitStack
    """Closed once the bus has stopped (no handler runs any more), before the engine: for what
    handlers use, such as HTTP clients, storage, a poller."""
    _tasks: AsyncExitStack

    def start_task(
        self, coroutine: Coroutine[Any, Any, None], *, name: str | None = None
    ) -> asyncio.Task[None]:
        """Run ``coroutine`` in the background; it is cancelled (and awaited) at shutdown,
        after the hook's exit and before the bus closes."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.push_async_callback(_cancel, task)
        return task


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def service_lifespan(
    service: str,
    settings: ServiceSettings,
    resources: Resources,
    app: FastAPI,
    *,
    ensure_streams: bool = True,
) -> AsyncIterator[ServiceScope]:
    """Tracing, engine, bus (and, unless ``ensure_streams`` is False, the streams), readiness;
    closed in reverse, also when entering fails part way (see the module's docstring)."""
    configure_telemetry(service, settings)  # tracing: provider, exporters, httpx spans
    async with AsyncExitStack() as stack:
        engine = build_engine(
            settings.database_url, pool_size=settings.database_pool_size, application_name=service
        )
        stack.push_async_callback(engine.dispose)
        after_bus = await stack.enter_async_context(AsyncExitStack())
        bus = await Bus.connect(settings.nats_url, service, settings.query_timeout_seconds)
        stack.push_async_callback(bus.close)
        resources.engine, resources.bus = engine, bus
        setattr(app.state, RESOURCES_STATE, resources)  # serve() stops it first at SIGTERM
        if ensure_streams:
            await bus.ensure_streams()
        tasks = await stack.enter_async_context(AsyncExitStack())
        yield ServiceScope(app, engine, bus, after_bus, tasks)


Hook = Callable[[ServiceScope], AbstractAsyncContextManager[None]]
"""A service's part of the lifespan: serve its queries, start its consumers and tasks, yield."""


def service_app(
    service: str,
    settings: ServiceSettings,
    hook: Hook,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """A service's FastAPI app: :func:`service_lifespan` around ``hook``; HTTP metrics named
    after ``service``; problem+json errors; the ops routes, then ``routers``."""
    resources = Resources()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(service, settings, resources, app) as scope, hook(scope):
            try:
                yield
            finally:
                # Before the hook's exit: the handlers finish with everything still open.
                await resources.stop(settings.shutdown_grace_seconds)

    app = FastAPI(title=title, lifespan=lifespan, telemetry=FASTAPI_TELEMETRY)
    app.add_middleware(HttpMetricsMiddleware, service=service)
    install_problem_handlers(app)
    app.include_router(ops_router(resources.readiness_checks()))
    for router in routers:
        app.include_router(router)
    return app


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
