"""The orchestrator's retention jobs (the loop, batching and metric: picture.common.retention).

- ``failed_generations``: generations failed more than ``failed_generation_retention_days``
  ago, with their history, errors and figures (ON DELETE CASCADE). Their read-model rows in
  the gateway go by the gateway's own job on the same setting (see picture.gateway.retention).
- ``status_history``: history entries older than ``status_history_retention_days`` of
  generations that have ended. The last entry (how it ended) stays, so the view still says why.

A retention of 0 days keeps the rows for ever (the job is not run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.retention import RetentionJob, run_jobs
from picture.orchestrator.settings import OrchestratorSettings
from picture.orchestrator.state_machine import TERMINAL

# 'failed' written out, not a parameter: the condition must match the partial index's
# (ix_generations_failed_ended) for the planner to take it.
DELETE_FAILED = text(
    """
DELETE FROM orchestrator.generations WHERE id IN (
    SELECT id FROM orchestrator.generations
    WHERE status = 'failed' AND coalesce(completed_at, updated_at) < :cutoff
    LIMIT :limit FOR UPDATE SKIP LOCKED
) RETURNING id
"""
)

DELETE_HISTORY = text(
    """
DELETE FROM orchestrator.status_history WHERE id IN (
    SELECT h.id FROM orchestrator.status_history h
    JOIN orchestrator.generations g ON g.id = h.generation_id
    WHERE h.at < :cutoff AND g.status = ANY(:ended)
      AND h.id < (SELECT max(l.id) FROM orchestrator.status_history l WHERE l.generation_id = h.generation_id)
    LIMIT :limit FOR UPDATE OF h SKIP LOCKED
) RETURNING id
"""
)


ENDED = sorted(status.value for status in TERMINAL)


def _failed_before(days: float) -> dict[str, object]:
    return {"cutoff": datetime.now(UTC) - timedelta(days=days)}


def _history_before(days: float) -> dict[str, object]:
    return {"cutoff": datetime.now(UTC) - timedelta(days=days), "ended": ENDED}


def jobs(s: OrchestratorSettings) -> list[RetentionJob]:
    chosen: list[RetentionJob] = []
    if s.failed_generation_retention_days > 0:
        days = s.failed_generation_retention_days
        chosen.append(RetentionJob("failed_generations", DELETE_FAILED, lambda: _failed_before(days)))
    if s.status_history_retention_days > 0:
        history_days = s.status_history_retention_days
        chosen.append(RetentionJob("status_history", DELETE_HISTORY, lambda: _history_before(history_days)))
    return chosen


async def retention_round(engine: AsyncEngine, settings: OrchestratorSettings) -> dict[str, int]:
    return await run_jobs(engine, jobs(settings), settings.retention_batch_size)
