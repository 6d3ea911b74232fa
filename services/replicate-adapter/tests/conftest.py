"""Integration fixtures: real NATS and PostgreSQL (session), the Replicate simulator served by
uvicorn in a thread, the adapter app run in-process through its lifespan."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from picture.common.contracts import PREDICTION_UPDATED, Envelope, ModelSpec, PredictionEvent
from picture.common.messaging import Bus
from picture.common.migrations import upgrade
from picture.devstack.infra import NatsServer, PostgresServer
from picture.devstack.ports import free_port
from picture.replicate_adapter.settings import AdapterSettings
from picture.replicate_simulator.app import create_app as create_simulator
from picture.replicate_simulator.settings import SimulatorSettings

SIM_TOKEN = "test-token"
# The catalog's seed, read from its one file (services never import each other; tests read it).
SEED_FILE = Path(__file__).parents[2] / "catalog/src/picture/catalog/seed_models.json"
SEED: dict[str, dict[str, Any]] = {m["name"]: m for m in json.loads(SEED_FILE.read_text())}


def seed_model(name: str, **overrides: Any) -> ModelSpec:
    """The catalog's record of ``name`` as the catalog seeds it, with ``overrides``."""
    return ModelSpec(**(SEED[name] | overrides))


@dataclass(frozen=True)
class Infra:
    nats_url: str
    database_url: str
    sim_url: str


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    root: Path = tmp_path_factory.mktemp("adapter-infra")
    nats = NatsServer(root / "nats", free_port(), free_port(), root / "nats.log")
    pg = PostgresServer(root / "pg", free_port(), root / "pg.log", fsync=False)
    sim_port = free_port()
    sim_app = create_simulator(
        SimulatorSettings(port=sim_port, token=SIM_TOKEN, latency_ms=150, start_delay_ms=20, jitter=0.0)
    )
    server = uvicorn.Server(
        uvicorn.Config(
            sim_app,
            host="127.0.0.1",
            port=sim_port,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    try:
        nats.start()
        pg.start()
        # run_env uses asyncio.run: keep it off any running loop.
        migrate = threading.Thread(target=upgrade, args=("picture.replicate_adapter:migrations", pg.url))
        migrate.start()
        migrate.join(60)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "simulator stopped while starting"
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.02)
        yield Infra(nats.url, pg.url, f"http://127.0.0.1:{sim_port}")
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(10)
        pg.stop()
        nats.stop()


@pytest.fixture(scope="session")
def settings(infra: Infra) -> AdapterSettings:
    return AdapterSettings(
        environment="test",
        nats_url=infra.nats_url,
        database_url=infra.database_url,
        replicate_base_url=infra.sim_url,
        replicate_api_token=SIM_TOKEN,
        replicate_poll_interval_seconds=0.1,
        replicate_poll_max_interval_seconds=0.5,
        replicate_timeout_seconds=5,
        predict_max_deliveries=3,
        log_json=False,
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def bus(infra: Infra) -> AsyncIterator[Bus]:
    bus = await Bus.connect(infra.nats_url, "adapter-tests")
    await bus.ensure_streams()
    yield bus
    await bus.close()


class Events:
    """The prediction events of one generation, as they arrive (core NATS subscription)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Envelope, PredictionEvent]] = asyncio.Queue()

    async def next(self, timeout: float = 10.0) -> PredictionEvent:
        _, event = await asyncio.wait_for(self.queue.get(), timeout)
        return event

    async def next_with_envelope(self, timeout: float = 10.0) -> tuple[Envelope, PredictionEvent]:
        return await asyncio.wait_for(self.queue.get(), timeout)


@asynccontextmanager
async def subscribe(bus: Bus, generation_id: Any) -> AsyncIterator[Events]:
    events = Events()

    async def on_msg(msg: Any) -> None:
        envelope = Envelope.model_validate_json(msg.data)
        events.queue.put_nowait((envelope, envelope.open(PredictionEvent)))

    sub = await bus.nc.subscribe(PREDICTION_UPDATED.subject(generation_id=generation_id), cb=on_msg)
    try:
        yield events
    finally:
        await sub.unsubscribe()
