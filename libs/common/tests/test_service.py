"""The service skeleton: what it opens, in which order, and that it closes everything in reverse,
also when starting fails part way. Real NATS, a real engine (pointed at a closed port: it never
needs a connection here) and a hook of the test's own that records what it sees."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine

from picture.common.service import Resources, ServiceScope, service_app, service_lifespan
from picture.common.settings import ServiceSettings
from picture.devstack.infra import NatsServer


class StartFailed(Exception):
    pass


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(nats_server: NatsServer) -> ServiceSettings:
    return ServiceSettings(
        nats_url=nats_server.url,
        database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{closed_port()}/none",
        database_pool_size=1,
    )


@pytest.fixture
def log() -> Iterator[list[str]]:
    """What happened, in order; engines disposed are recorded as "engine disposed"."""
    entries: list[str] = []

    def disposed(engine: Any) -> None:
        entries.append("engine disposed")

    event.listen(Engine, "engine_disposed", disposed)
    yield entries
    event.remove(Engine, "engine_disposed", disposed)


def recording_hook(log: list[str], *, fail: bool = False) -> Any:
    """Starts two tasks and puts two callbacks after the bus, noting whether the bus was still
    connected when each was stopped; raises StartFailed before yielding when ``fail``."""

    async def task(name: str, scope: ServiceScope) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append(f"{name} cancelled, bus connected={scope.bus.is_connected}")
            raise

    @asynccontextmanager
    async def hook(scope: ServiceScope) -> AsyncIterator[None]:
        log.append(f"hook entered, bus connected={scope.bus.is_connected}")

        async def after_bus(name: str) -> None:
            log.append(f"{name} closed, bus connected={scope.bus.is_connected}")

        scope.after_bus.push_async_callback(after_bus, "client")
        scope.after_bus.push_async_callback(after_bus, "poller")
        scope.start_task(task("relay", scope))
        scope.start_task(task("scheduler", scope))
        await asyncio.sleep(0)  # the tasks are running
        try:
            if fail:
                raise StartFailed
            yield
        finally:
            log.append("hook exited")

    return hook


CLOSE_ORDER = [
    "hook exited",
    "scheduler cancelled, bus connected=True",
    "relay cancelled, bus connected=True",
    "poller closed, bus connected=False",
    "client closed, bus connected=False",
    "engine disposed",
]


async def test_opens_engine_bus_streams_and_readiness_then_closes_in_reverse(
    settings: ServiceSettings, log: list[str]
) -> None:
    resources = Resources()
    hook = recording_hook(log)
    async with service_lifespan("skeleton-test", settings, resources, FastAPI()) as scope, hook(scope):
        assert resources.bus is scope.bus and resources.engine is scope.engine
        assert await resources.nats_ready()
        assert {s.config.name for s in await scope.bus.js.streams_info()} >= {"PICTURE_CMD", "PICTURE_EVT"}
        log.append("serving")
    assert log == ["hook entered, bus connected=True", "serving", *CLOSE_ORDER]
    assert not await resources.nats_ready()


async def test_a_hook_failing_during_start_closes_what_was_opened_in_reverse(
    settings: ServiceSettings, log: list[str]
) -> None:
    resources = Resources()
    hook = recording_hook(log, fail=True)
    with pytest.raises(StartFailed):
        async with service_lifespan("skeleton-test", settings, resources, FastAPI()) as scope, hook(scope):
            pytest.fail("the hook failed: the body must not run")
    assert log == ["hook entered, bus connected=True", *CLOSE_ORDER]
    assert not await resources.nats_ready()


async def test_start_abandoned_while_waiting_for_nats_disposes_the_engine(
    settings: ServiceSettings, log: list[str]
) -> None:
    """NATS unreachable: connecting retries until the start is abandoned (here a timeout)."""
    unreachable = settings.model_copy(update={"nats_url": f"nats://127.0.0.1:{closed_port()}"})
    resources = Resources()

    async def start() -> None:
        async with service_lifespan("skeleton-test", unreachable, resources, FastAPI()):
            pytest.fail("NATS is unreachable: the lifespan must not be entered")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(start(), 0.5)
    assert log == ["engine disposed"]
    assert resources.bus is None and resources.engine is None


async def test_service_app_serves_ops_routes_and_the_services_routers_around_its_hook(
    settings: ServiceSettings, log: list[str]
) -> None:
    router = APIRouter()

    @router.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    app = service_app("skeleton-test", settings, recording_hook(log), title="Skeleton", routers=(router,))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        before = await http.get("/readyz")
        assert before.status_code == 503 and before.json()["failing"] == ["nats", "database"]
        async with app.router.lifespan_context(app):
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/hello")).json() == {"hello": "world"}
            during = await http.get("/readyz")  # NATS is up; the database is not
            assert during.status_code == 503 and during.json()["failing"] == ["database"]
            metrics = (await http.get("/metrics")).text
            assert 'service="skeleton-test"' in metrics
    assert app.title == "Skeleton"
    assert log == ["hook entered, bus connected=True", *CLOSE_ORDER]
