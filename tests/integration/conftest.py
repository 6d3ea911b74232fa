"""The real system for integration tests: NATS (JetStream), PostgreSQL, the Replicate simulator
and the five services as separate processes on free ports, with their own data folder.

Nothing here touches a running `make run` (other ports, other folder).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.devstack.ports import free_port
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import ManagedProcess, Ports, Stack
from picture.devstack.tokens import mint_token

TERMINAL = {"completed", "failed", "cancelled"}
# Generous gateway limits so that suites are not throttled; the limit tests set per-user limits
# in gateway.users.
GENEROUS_GATEWAY_LIMITS = {
    "PICTURE_HOURLY_LIMIT": "500",
    "PICTURE_DAILY_LIMIT": "2000",
    "PICTURE_MAX_CONCURRENT": "50",
    "PICTURE_RATE_LIMIT_PER_MINUTE": "6000",
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("stack")
    secrets = ensure_dev_env(var_dir / "dev.env")
    system = Stack(
        var_dir,
        Ports.free(),
        secrets,
        pg_fsync=False,
        extra_env={
            "gateway": {
                **GENEROUS_GATEWAY_LIMITS,
                "PICTURE_SSE_HEARTBEAT_SECONDS": "1",
                "PICTURE_WEBHOOK_SIGNING_SECRET": (
                    "whsec_dGVzdC13ZWJob29rLXNpZ25pbmctc2VjcmV0LTAxMjM0NTY3ODk="
                ),
                "PICTURE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the test receiver is on loopback
            },
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": "300",
                "PICTURE_SIMULATOR_START_DELAY_MS": "50",
            },
        },
    )
    with running_stack(system):
        yield system


@contextmanager
def running_stack(system: Stack, *, migrate: bool = True) -> Iterator[Stack]:
    """Start ``system`` (on failure print each process's log tail, stop, re-raise); stop it on
    exit. ``migrate=False``: the schemas are already there (a restart on the same folder)."""
    try:
        if migrate:
            system.start()
        else:
            system.start_infra()
            system.start_services()
    except Exception:
        for process in system.processes.values():
            print(f"--- {process.name}\n{process.log_tail(40)}")
        system.stop()
        raise
    try:
        yield system
    finally:
        system.stop()


def extra_gateway(stack: Stack, name: str, **env: str) -> ManagedProcess:
    """One more gateway process on the stack (not started), with its own port and log, and
    ``env`` on top of the stack's gateway environment."""
    base = stack._process("gateway")
    port = free_port()
    return dataclasses.replace(
        base,
        env={**base.env, "PICTURE_HTTP_PORT": str(port), **env},
        port=port,
        log_file=stack.log_dir / f"{name}.log",
    )


@contextmanager
def running_gateway(stack: Stack, name: str, **env: str) -> Iterator[ManagedProcess]:
    """:func:`extra_gateway`, started and ready; stopped on exit."""
    process = extra_gateway(stack, name, **env)
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.close()


@pytest.fixture(scope="session")
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def user_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def token(stack: Stack, user_id: uuid.UUID) -> str:
    return mint_token(stack.secrets["PICTURE_JWT_SECRET"], user_id)


@pytest.fixture
async def api(stack: Stack, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


async def wait_terminal(api: httpx.AsyncClient, generation_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get(f"/v1/generations/{generation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in TERMINAL:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"generation not terminal after {timeout}s: {body['status']}")
        await asyncio.sleep(0.2)


async def set_limits(db: AsyncEngine, user_id: uuid.UUID, **limits: int | bool) -> None:
    """Per-user limit overrides (gateway.users)."""
    columns = ", ".join(limits)
    values = ", ".join(f":{k}" for k in limits)
    updates = ", ".join(f"{k} = excluded.{k}" for k in limits)
    async with db.begin() as conn:
        await conn.execute(
            text(
                f"INSERT INTO gateway.users (user_id, {columns}) VALUES (:u, {values}) "
                f"ON CONFLICT (user_id) DO UPDATE SET {updates}"
            ),
            {"u": user_id, **limits},
        )


@pytest.fixture
async def as_user(stack: Stack) -> AsyncIterator[Any]:
    """``as_user(user_id)``: an API client with that user's token (closed after the test)."""
    opened: list[httpx.AsyncClient] = []

    def make(user: uuid.UUID) -> httpx.AsyncClient:
        token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], user)
        client = httpx.AsyncClient(
            base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()
