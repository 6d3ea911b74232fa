"""The scheduler (grants dispatch slots) and the sweeper (deadlines, stuck generations).

Scheduler: a generation stays ``queued`` with ``dispatched_at`` NULL until a slot is free. One
round, in one transaction under an advisory lock (one scheduler at a time across replicas),
ranks the waiting generations by priority, then by how many the user already has in flight
plus their rank among the user's waiting ones (round-robin across users: fairness), then age;
keeps those within the per-user and global limits; locks them (FOR UPDATE SKIP LOCKED: a
concurrent cancel wins) and writes their PredictCommand to the outbox. "In flight" = dispatched
and not terminal, so a slot frees on a terminal state (and during a retry's back-off).

Sweeper: every few seconds, fails generations past their start deadline or total timeout, and
resumes generations without progress past their state's limit by sending the next command
again with the same attempt (consumers are idempotent per generation and attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from picture.common import contracts as c
from picture.common.contracts import GenerationStatus
from picture.orchestrator import messages
from picture.orchestrator.context import Context
from picture.orchestrator.lifecycle import settle
from picture.orchestrator.metrics import DISPATCHED, GENERATIONS_ACTIVE, IN_FLIGHT, SWEPT, WAITING
from picture.orchestrator.outbox import enqueue, enqueue_all
from picture.orchestrator.state_machine import ACTIVE, Ignore, StartDeadline, TotalTimeout
from picture.orchestrator.tables import NOT_TERMINAL_SQL, WAITING_SQL, generations

log = logging.getLogger(__name__)

SCHEDULER_LOCK = 0x5049_4354  # "PICT": pg_advisory_xact_lock key of the scheduler round

SAMPLE_ACTIVE = text(
    "SELECT status, count(*) AS n FROM orchestrator.generations "  # noqa: S608 - constant SQL
    f"WHERE {NOT_TERMINAL_SQL} GROUP BY status"
)

# Dispatched and not terminal: the generation holds a slot.
IN_FLIGHT_SQL = f"{NOT_TERMINAL_SQL} AND dispatched_at IS NOT NULL"

SELECT_DISPATCHABLE = text(
    f"""
WITH running AS (
    SELECT user_id, count(*) AS n FROM orchestrator.generations
    WHERE {IN_FLIGHT_SQL}
    GROUP BY user_id
), waiting AS (
    SELECT id, user_id, priority, created_at,
           row_number() OVER (PARTITION BY user_id ORDER BY priority DESC, created_at, id) AS rank
    FROM orchestrator.generations
    WHERE {WAITING_SQL} AND available_at <= now()
)
SELECT w.id, coalesce(r.n, 0) + w.rank AS turn
FROM waiting w LEFT JOIN running r ON r.user_id = w.user_id
WHERE coalesce(r.n, 0) + w.rank <= :per_user
ORDER BY w.priority DESC, turn, w.created_at, w.id
LIMIT greatest(:global_limit - (SELECT coalesce(sum(n), 0) FROM running), 0)
"""  # noqa: S608 - constant SQL, values bound
)

SAMPLE_GAUGES = text(
    f"""
SELECT count(*) FILTER (WHERE {WAITING_SQL}) AS waiting,
       count(*) FILTER (WHERE {IN_FLIGHT_SQL}) AS in_flight
FROM orchestrator.generations WHERE {NOT_TERMINAL_SQL}
"""  # noqa: S608 - constant SQL
)


async def schedule_once(ctx: Context) -> int:
    """One scheduling round. Returns how many generations were dispatched."""
    settings = ctx.settings
    async with ctx.transaction() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEDULER_LOCK})
        ids = [
            row.id
            for row in (
                await conn.execute(
                    SELECT_DISPATCHABLE,
                    {"per_user": settings.per_user_concurrency, "global_limit": settings.global_concurrency},
                )
            ).all()
        ]
        if not ids:
            return 0
        rows = (
            await conn.execute(
                generations.select()
                .where(
                    generations.c.id.in_(ids),
                    generations.c.status == GenerationStatus.QUEUED.value,
                    generations.c.dispatched_at.is_(None),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return 0
        await conn.execute(
            update(generations)
            .where(generations.c.id.in_([r.id for r in rows]))
            # clock_timestamp(), not now(): the slot was freed by a commit seen after this
            # transaction began, and dispatched_at must not predate it.
            .values(dispatched_at=text("clock_timestamp()"), updated_at=text("clock_timestamp()"))
        )
        timeout = settings.total_timeout_seconds
        await enqueue_all(conn, [messages.predict_message(row, timeout) for row in rows])
    DISPATCHED.inc(len(rows))
    ctx.relay.notify()
    return len(rows)


async def sample_gauges(ctx: Context) -> None:
    async with ctx.engine.connect() as conn:
        row = (await conn.execute(SAMPLE_GAUGES)).one()
        active = {r.status: r.n for r in (await conn.execute(SAMPLE_ACTIVE)).all()}
    for status in ACTIVE:
        GENERATIONS_ACTIVE.labels(status.value).set(active.get(status.value, 0))
    WAITING.set(row.waiting)
    IN_FLIGHT.set(row.in_flight)


async def run_scheduler(ctx: Context) -> None:
    """Rounds on every wake (terminal or queued change) and at least every idle interval."""
    while True:
        ctx.scheduler_wake.clear()
        try:
            dispatched = await schedule_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL away: try again shortly
            log.warning("scheduler round failed: %s", exc)
            dispatched = 0
            await asyncio.sleep(1.0)
        if dispatched:
            continue  # the limits may allow more
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.scheduler_wake.wait(), ctx.settings.scheduler_idle_seconds)


# ------------------------------------------------------------------------------ sweeper

SWEEP_BATCH = 100

# Without progress for longer than their state's limit: dispatched but not started, running,
# or being fetched (bound: :dispatched, :processing, :downloading seconds).
STUCK_SQL = (
    f"((status = '{GenerationStatus.QUEUED.value}' AND dispatched_at IS NOT NULL"
    "   AND updated_at < now() - make_interval(secs => :dispatched))"
    f" OR (status = '{GenerationStatus.PROCESSING.value}'"
    "   AND updated_at < now() - make_interval(secs => :processing))"
    f" OR (status = '{GenerationStatus.DOWNLOADING.value}'"
    "   AND updated_at < now() - make_interval(secs => :downloading)))"
)


async def _locked(conn: AsyncConnection, where: str, params: dict[str, Any]) -> list[Any]:
    return list(
        (
            await conn.execute(
                generations.select()
                .where(text(where))
                .order_by(generations.c.updated_at)
                .limit(SWEEP_BATCH)
                .with_for_update(skip_locked=True),
                params,
            )
        ).all()
    )


async def sweep_once(ctx: Context) -> int:
    """Deadlines first, then stuck generations. Returns the number of actions taken."""
    s = ctx.settings
    actions = 0
    async with ctx.transaction() as conn:
        for row in await _locked(
            conn,
            f"{NOT_TERMINAL_SQL} AND created_at < now() - make_interval(secs => :limit)",
            {"limit": s.total_timeout_seconds},
        ):
            if not isinstance(await settle(ctx, conn, row, TotalTimeout()), Ignore):
                SWEPT.labels("timeout").inc()
                actions += 1
        for row in await _locked(
            conn,
            f"{NOT_TERMINAL_SQL} AND started_at IS NULL"
            " AND created_at < now() - make_interval(secs => :limit)",
            {"limit": s.start_deadline_seconds},
        ):
            if not isinstance(await settle(ctx, conn, row, StartDeadline()), Ignore):
                SWEPT.labels("deadline").inc()
                actions += 1
    async with ctx.transaction() as conn:
        stuck = await _locked(
            conn,
            STUCK_SQL,
            {
                "dispatched": s.stuck_dispatched_seconds,
                "processing": s.stuck_processing_seconds,
                "downloading": s.downloading_limit_seconds,
            },
        )
        for row in stuck:
            status = GenerationStatus(row.status)
            if status is GenerationStatus.DOWNLOADING and row.image_id is not None:
                objects = (c.StoredObject.model_validate(o) for o in row.stored_objects or ())
                command = messages.record_image_command(row, row.image_id, objects)
                await enqueue(conn, c.RECORD_IMAGE, command)
                action = "resume_record"
            elif status is GenerationStatus.DOWNLOADING:
                await enqueue(conn, c.INGEST, messages.ingest_command(row))
                action = "resume_ingest"
            else:  # the adapter answers a repeated predict with the prediction it has
                await enqueue_all(conn, [messages.predict_message(row, s.total_timeout_seconds)])
                action = "resume_predict"
            await conn.execute(
                update(generations).where(generations.c.id == row.id).values(updated_at=text("now()"))
            )
            log.info("sweeper: %s for generation %s (attempt %d)", action, row.id, row.attempt)
            SWEPT.labels(action).inc()
            actions += 1
    if actions:
        ctx.notify()
    return actions


async def run_sweeper(ctx: Context) -> None:
    s = ctx.settings
    if s.stuck_downloading_seconds is not None and s.stuck_downloading_seconds < s.downloading_limit_seconds:
        log.warning(
            "stuck_downloading_seconds %g is shorter than media's download budget plus the margin: "
            "using %g s (resuming sooner would run a download twice)",
            s.stuck_downloading_seconds,
            s.downloading_limit_seconds,
        )
    while True:
        try:
            await sweep_once(ctx)
            await sample_gauges(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sweep failed: %s", exc)
        await asyncio.sleep(ctx.settings.sweep_interval_seconds)
