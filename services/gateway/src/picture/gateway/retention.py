"""The gateway's retention jobs (the loop, batching and metric: picture.common.retention).

- ``generation_views``: read-model rows of generations that failed more than
  ``failed_generation_retention_days`` ago. The orchestrator deletes the generations
  themselves on the same (shared) setting. The gateway runs its own job rather than consuming
  an event of the orchestrator's: the read model is the gateway's, a new event would need a
  new durable consumer and stream subject for what one DELETE statement does, and the two jobs
  cannot disagree for long. A view is written when its failure reaches the gateway, so it
  becomes due no earlier than the orchestrator's row; a GET that misses the read model asks
  the orchestrator, so a view deleted first is simply not found (or rebuilt if the
  orchestrator still has it, and deleted at the next round).
- ``webhook_deliveries``: client webhook deliveries delivered more than
  ``webhook_delivery_retention_days`` ago (the log of attempts is only for debugging), and
  those not sent because a newer state was, after as long.

A retention of 0 days keeps the rows for ever (the job is not run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.retention import RetentionJob, run_jobs
from picture.gateway.settings import GatewaySettings

# Statuses written out, not parameters: the conditions must match the partial indexes'
# (migration 0007) for the planner to take them.
DELETE_FAILED_VIEWS = text(
    """
DELETE FROM gateway.generation_views WHERE id IN (
    SELECT id FROM gateway.generation_views
    WHERE status = 'failed' AND updated_at < :cutoff
    LIMIT :limit FOR UPDATE SKIP LOCKED
) RETURNING id
"""
)

DELETE_DELIVERED = text(
    """
DELETE FROM gateway.webhook_deliveries WHERE id IN (
    SELECT id FROM gateway.webhook_deliveries
    WHERE status = 'delivered' AND delivered_at < :cutoff
    LIMIT :limit FOR UPDATE SKIP LOCKED
) RETURNING id
"""
)

# Not sent because a newer state of the generation was (never sent: no delivery time).
DELETE_SUPERSEDED = text(
    """
DELETE FROM gateway.webhook_deliveries WHERE id IN (
    SELECT id FROM gateway.webhook_deliveries
    WHERE status = 'superseded' AND created_at < :cutoff
    LIMIT :limit FOR UPDATE SKIP LOCKED
) RETURNING id
"""
)


def _before(days: float) -> dict[str, object]:
    return {"cutoff": datetime.now(UTC) - timedelta(days=days)}


def jobs(settings: GatewaySettings) -> list[RetentionJob]:
    chosen: list[RetentionJob] = []
    if settings.failed_generation_retention_days > 0:
        days = settings.failed_generation_retention_days
        chosen.append(RetentionJob("generation_views", DELETE_FAILED_VIEWS, lambda: _before(days)))
    if settings.webhook_delivery_retention_days > 0:
        delivered_days = settings.webhook_delivery_retention_days
        chosen.append(RetentionJob("webhook_deliveries", DELETE_DELIVERED, lambda: _before(delivered_days)))
        chosen.append(
            RetentionJob("webhook_deliveries_superseded", DELETE_SUPERSEDED, lambda: _before(delivered_days))
        )
    return chosen


async def retention_round(engine: AsyncEngine, settings: GatewaySettings) -> dict[str, int]:
    return await run_jobs(engine, jobs(settings), settings.retention_batch_size)
