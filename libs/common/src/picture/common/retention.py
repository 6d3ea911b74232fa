"""Retention: the periodic deletion of rows a service no longer needs, in the service that owns
them.

A job is one DELETE statement that removes at most ``:limit`` rows picked with ``FOR UPDATE
SKIP LOCKED``; :func:`delete_in_batches` repeats it until a round removes fewer than the batch.
Short transactions keep locks and WAL small, and several replicas running the same job at the
same time take disjoint rows instead of waiting on each other (or deleting a row twice).
Every removed row is counted in ``picture_retention_deleted_total{kind}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

DELETED = Counter(
    "picture_retention_deleted_total",
    "Rows (or stored objects) removed by retention jobs, by kind.",
    ["kind"],
)


@dataclass(frozen=True)
class RetentionJob:
    """``statement`` deletes at most ``:limit`` rows and returns one row per deleted row."""

    kind: str
    statement: TextClause
    params: Callable[[], Mapping[str, Any]]
    """The statement's parameters (besides ``limit``), computed at each round (the cutoff)."""


async def delete_in_batches(engine: AsyncEngine, job: RetentionJob, batch_size: int) -> int:
    """Run ``job`` in batches of ``batch_size`` until nothing is left; the number removed."""
    total = 0
    params = {**job.params(), "limit": batch_size}
    while True:
        async with engine.begin() as conn:
            removed = len((await conn.execute(job.statement, params)).all())
        total += removed
        DELETED.labels(job.kind).inc(removed)
        if removed < batch_size:
            return total


async def run_jobs(engine: AsyncEngine, jobs: Sequence[RetentionJob], batch_size: int) -> dict[str, int]:
    """One round of every job; a failing job is logged and does not stop the others."""
    removed: dict[str, int] = {}
    for job in jobs:
        try:
            removed[job.kind] = await delete_in_batches(engine, job, batch_size)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("retention job %s failed: %s", job.kind, exc)
    if any(removed.values()):
        log.info("retention removed %s", removed)
    return removed


async def run_periodically(round_: Callable[[], Awaitable[object]], interval_seconds: float) -> None:
    """Run ``round_`` now and then every ``interval_seconds`` (a failed round is logged and
    retried at the next interval); for :meth:`ServiceScope.start_task`."""
    while True:
        try:
            await round_()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("periodic job failed: %s", exc)
        await asyncio.sleep(interval_seconds)
