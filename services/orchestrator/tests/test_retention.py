"""Retention on a real PostgreSQL: count what remains after each job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.common.migrations import upgrade
from picture.devstack.infra import PostgresServer
from picture.devstack.servers import running_postgres
from picture.orchestrator.retention import retention_round
from picture.orchestrator.settings import OrchestratorSettings
from picture.orchestrator.tables import generation_errors, generations, status_history

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with running_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="module")
async def engine(postgres_server: PostgresServer) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, "picture.orchestrator:migrations", postgres_server.url)
    created = create_async_engine(postgres_server.url)
    yield created
    await created.dispose()


async def _generation(
    engine: AsyncEngine, status: str, ended_days_ago: float | None, history: int
) -> uuid.UUID:
    """A generation of ``status`` that ended that many days ago (None: not ended), with
    ``history`` entries written 100 days ago and, when failed, an error row."""
    generation_id, user_id = uuid.uuid4(), uuid.uuid4()
    ended = None if ended_days_ago is None else NOW - timedelta(days=ended_days_ago)
    long_ago = NOW - timedelta(days=100)
    async with engine.begin() as conn:
        await conn.execute(
            insert(generations).values(
                id=generation_id,
                user_id=user_id,
                status=status,
                model="flux-schnell",
                model_spec={},
                parameters={},
                created_at=long_ago,
                updated_at=ended or long_ago,
                completed_at=ended,
            )
        )
        await conn.execute(
            insert(status_history),
            [
                {"generation_id": generation_id, "to_status": status, "reason": f"step {n}", "at": long_ago}
                for n in range(history)
            ],
        )
        if status == "failed":
            await conn.execute(
                insert(generation_errors).values(
                    generation_id=generation_id,
                    user_id=user_id,
                    model="flux-schnell",
                    error_type="prediction_failed",
                    error_kind="permanent",
                    error_message="boom",
                    retry_count=0,
                    max_retries=3,
                    recovery_action="none",
                )
            )
    return generation_id


async def _count(engine: AsyncEngine, table: object, where: object) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(where)) or 0)  # type: ignore[arg-type]


async def test_failed_generations_and_old_history_of_ended_ones_go(engine: AsyncEngine) -> None:
    old_failed = [await _generation(engine, "failed", 31, 3) for _ in range(3)]
    recent_failed = await _generation(engine, "failed", 29, 3)
    old_completed = await _generation(engine, "completed", 200, 4)
    old_cancelled = await _generation(engine, "cancelled", 200, 2)
    running = await _generation(engine, "processing", None, 3)
    settings = OrchestratorSettings(retention_batch_size=2)  # several batches per job

    removed = await retention_round(engine, settings)

    assert removed["failed_generations"] == 3
    ids = [*old_failed, recent_failed, old_completed, old_cancelled, running]
    assert await _count(engine, generations, generations.c.id.in_(ids)) == 4
    assert await _count(engine, generation_errors, generation_errors.c.generation_id.in_(old_failed)) == 0
    assert await _count(engine, generation_errors, generation_errors.c.generation_id == recent_failed) == 1

    def history_of(generation_id: uuid.UUID) -> object:
        return status_history.c.generation_id == generation_id

    # ended: only the last entry (how it ended) stays; a running one keeps all of its history
    assert await _count(engine, status_history, history_of(recent_failed)) == 1
    assert await _count(engine, status_history, history_of(old_completed)) == 1
    assert await _count(engine, status_history, history_of(old_cancelled)) == 1
    assert await _count(engine, status_history, history_of(running)) == 3
    assert await _count(engine, status_history, status_history.c.generation_id.in_(old_failed)) == 0

    again = await retention_round(engine, settings)
    assert again == {"failed_generations": 0, "status_history": 0}


async def test_zero_days_keeps_everything(engine: AsyncEngine) -> None:
    old_failed = await _generation(engine, "failed", 400, 2)
    settings = OrchestratorSettings(failed_generation_retention_days=0, status_history_retention_days=0)
    assert await retention_round(engine, settings) == {}
    assert await _count(engine, generations, generations.c.id == old_failed) == 1
    assert await _count(engine, status_history, status_history.c.generation_id == old_failed) == 2
