"""The gateway's retention on a real PostgreSQL: count what remains after each job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.gateway.retention import retention_round
from picture.gateway.settings import GatewaySettings
from picture.gateway.tables import generation_views, webhook_deliveries

NOW = datetime.now(UTC)


async def _view(engine: AsyncEngine, status: str, days_ago: float) -> uuid.UUID:
    view_id = uuid.uuid4()
    at = NOW - timedelta(days=days_ago)
    async with engine.begin() as conn:
        await conn.execute(
            insert(generation_views).values(
                id=view_id,
                user_id=uuid.uuid4(),
                version=3,
                status=status,
                view=b"{}",
                created_at=at,
                updated_at=at,
            )
        )
    return view_id


async def _delivery(engine: AsyncEngine, status: str, days_ago: float) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    at = NOW - timedelta(days=days_ago)
    async with engine.begin() as conn:
        await conn.execute(
            insert(webhook_deliveries).values(
                id=delivery_id,
                generation_id=uuid.uuid4(),
                event_seq=1,
                status=status,
                payload={},
                attempts=1,
                delivered_at=at if status == "delivered" else None,
                created_at=at,
            )
        )
    return delivery_id


async def _remaining(engine: AsyncEngine, table: object, ids: list[uuid.UUID]) -> int:
    async with engine.connect() as conn:
        column = table.c.id  # type: ignore[attr-defined]
        return int(await conn.scalar(select(func.count()).select_from(table).where(column.in_(ids))) or 0)  # type: ignore[arg-type]


async def test_old_failed_views_and_delivered_webhooks_go(engine: AsyncEngine) -> None:
    old_failed = [await _view(engine, "failed", 31) for _ in range(3)]
    kept_views = [
        await _view(engine, "failed", 29),
        await _view(engine, "completed", 300),
        await _view(engine, "cancelled", 300),
    ]
    old_delivered = [await _delivery(engine, "delivered", 8) for _ in range(3)]
    old_superseded = [await _delivery(engine, "superseded", 8)]
    kept_deliveries = [
        await _delivery(engine, "delivered", 6),
        await _delivery(engine, "superseded", 6),
        await _delivery(engine, "pending", 30),
        await _delivery(engine, "failed", 30),
    ]
    settings = GatewaySettings(retention_batch_size=2)

    removed = await retention_round(engine, settings)

    assert removed == {"generation_views": 3, "webhook_deliveries": 3, "webhook_deliveries_superseded": 1}
    assert await _remaining(engine, generation_views, old_failed) == 0
    assert await _remaining(engine, generation_views, kept_views) == 3
    assert await _remaining(engine, webhook_deliveries, old_delivered) == 0
    assert await _remaining(engine, webhook_deliveries, old_superseded) == 0
    assert await _remaining(engine, webhook_deliveries, kept_deliveries) == 4
    assert await retention_round(engine, settings) == {
        "generation_views": 0,
        "webhook_deliveries": 0,
        "webhook_deliveries_superseded": 0,
    }
