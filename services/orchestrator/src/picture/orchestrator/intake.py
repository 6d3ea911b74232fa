"""Accepting generations: the dedup key, reuse of an identical recent image, the insert of rows,
history and announcements, and the group commit that writes concurrent creates together."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import null, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from picture.common import contracts as c
from picture.common.contracts import GenerationStatus
from picture.common.messaging import Delivery
from picture.common.telemetry import capture_trace_context
from picture.orchestrator.context import Context
from picture.orchestrator.lifecycle import record_performance
from picture.orchestrator.messages import update_message
from picture.orchestrator.metrics import DEDUP_HITS, GENERATIONS_FINISHED
from picture.orchestrator.outbox import enqueue_all
from picture.orchestrator.state_machine import Move, accepted
from picture.orchestrator.tables import generations, status_history
from picture.orchestrator.views import QUEUE_POSITION, HistoryEntry, generation_view, is_waiting


def request_hash(model: c.ModelSpec, parameters: c.GenerationParameters) -> str | None:
    """The dedup cache key of a deterministic request (a fixed seed); None otherwise."""
    if parameters.seed is None:
        return None
    key = {
        "model": model.name,
        "replicate_id": model.replicate_id,
        "version": model.version,
        "parameters": parameters.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class NewGeneration:
    generation_id: uuid.UUID
    user_id: uuid.UUID
    model: c.ModelSpec
    parameters: c.GenerationParameters
    reuse: bool = True
    priority: int = 0
    batch_id: uuid.UUID | None = None
    batch_index: int | None = None
    # W3C trace context of the accepting request (captured there: the write may be grouped)
    trace_context: dict[str, str] | None = None
    # When the client was told the generation exists (the gateway's acceptance); None: now.
    accepted_at: datetime | None = None


async def _reusable(ctx: Context, conn: AsyncConnection, new: NewGeneration, key: str | None) -> Any:
    """The user's latest completed generation of the same request within the dedup window."""
    if not new.reuse or key is None or ctx.settings.dedup_window_seconds <= 0:
        return None
    since = ctx.now() - timedelta(seconds=ctx.settings.dedup_window_seconds)
    return (
        await conn.execute(
            select(generations)
            .where(
                generations.c.user_id == new.user_id,
                generations.c.request_hash == key,
                generations.c.status == GenerationStatus.COMPLETED.value,
                generations.c.image_id.is_not(None),
                generations.c.completed_at >= since,
            )
            .order_by(generations.c.completed_at.desc())
            .limit(1)
        )
    ).first()


async def insert_generation(
    ctx: Context, conn: AsyncConnection, new: NewGeneration
) -> c.GenerationView | None:
    """Write one accepted generation (see :func:`insert_generations`)."""
    return (await insert_generations(ctx, conn, [new]))[0]


async def insert_generations(
    ctx: Context, conn: AsyncConnection, news: Sequence[NewGeneration]
) -> list[c.GenerationView | None]:
    """Write accepted generations, queued for the scheduler (or completed at once from the
    dedup cache), and announce each. Returns their views, in order; None for an id that exists
    already (nothing written for it). One statement per table whatever the count; the views
    are built from the inserted rows, not read back."""
    now = ctx.now()
    planned: list[tuple[NewGeneration, dict[str, Any], tuple[Move, ...], Any]] = []
    for new in news:
        key = request_hash(new.model, new.parameters)
        source = await _reusable(ctx, conn, new, key)
        values: dict[str, Any] = {
            "id": new.generation_id,
            "user_id": new.user_id,
            "status": GenerationStatus.QUEUED.value,
            "model": new.model.name,
            "model_spec": new.model.model_dump(mode="json"),
            "parameters": new.parameters.model_dump(mode="json"),
            "priority": new.priority,
            "batch_id": new.batch_id,
            "batch_index": new.batch_index,
            "request_hash": key,
            "trace_context": new.trace_context if new.trace_context is not None else capture_trace_context(),
            "created_at": new.accepted_at or now,
            "updated_at": now,
            "available_at": now,
            "dispatched_at": None,
            "started_at": None,
            "completed_at": None,
            "image_id": None,
            "stored_objects": null(),  # SQL NULL: a JSONB column would store None as JSON null
            "output_urls": null(),
            "cost_usd": None,
            "reused_from": None,
        }
        if source is not None:
            values.update(
                status=GenerationStatus.COMPLETED.value,
                dispatched_at=now,
                started_at=now,
                completed_at=now,
                image_id=source.image_id,
                stored_objects=source.stored_objects,
                output_urls=source.output_urls,
                cost_usd=0.0,
                reused_from=source.id,
            )
        moves = accepted(source.id if source is not None else None)
        values["version"] = len(moves)
        planned.append((new, values, moves, source))
    if not planned:
        return []
    inserted = {
        row.id: row
        for row in await conn.execute(
            # executemany form: compiled once and cached (a multi-row .values() is compiled per call)
            _INSERT_GENERATION,
            [values for _, values, _, _ in planned],
        )
    }
    written = [(new, moves, source) for new, _, moves, source in planned if new.generation_id in inserted]
    if not written:
        return [None] * len(planned)
    await conn.execute(
        status_history.insert(),
        [
            {
                "generation_id": new.generation_id,
                "from_status": move.source.value if move.source is not None else None,
                "to_status": move.target.value,
                "reason": move.reason,
                "at": now,
            }
            for new, moves, _ in written
            for move in moves
        ],
    )
    waiting = [new.generation_id for new, _, _ in written if is_waiting(inserted[new.generation_id])]
    positions: dict[uuid.UUID, int] = {}
    if waiting:
        positions = {
            r.id: r.queue_position
            for r in await conn.execute(
                select(generations.c.id, QUEUE_POSITION).where(generations.c.id.in_(waiting))
            )
        }
    views: dict[uuid.UUID, c.GenerationView] = {}
    messages = []
    for new, moves, source in written:
        row = inserted[new.generation_id]
        if source is not None:
            DEDUP_HITS.labels(new.model.name).inc()
            await record_performance(conn, row)
            GENERATIONS_FINISHED.labels(new.model.name, "completed").inc()
        history = [HistoryEntry(move.target.value, now, move.reason) for move in moves]
        view = generation_view(row, history, positions.get(row.id), ctx.settings.global_concurrency)
        views[row.id] = view
        messages.append(update_message(view, new.trace_context))
    await enqueue_all(conn, messages)
    return [views.get(new.generation_id) for new, _, _, _ in planned]


_INSERT_GENERATION = (
    insert(generations).on_conflict_do_nothing(index_elements=["id"]).returning(*generations.c)
)


class GenerationWriter:
    """Group commit for accepted generations: creates that arrive while one transaction runs
    are written together by the next (one transaction and one statement per table for the
    group, instead of six round trips each). No added wait: a lone create is written at once.
    A group that fails is retried one by one, so each caller gets its own outcome."""

    MAX_GROUP = 100

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._waiting: list[tuple[NewGeneration, asyncio.Future[c.GenerationView | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, new: NewGeneration) -> c.GenerationView | None:
        future: asyncio.Future[c.GenerationView | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((new, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="generation-writer")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self.MAX_GROUP], self._waiting[self.MAX_GROUP :]
            try:
                views = await self._commit([new for new, _ in group])
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0][1], exc)
                    continue
                for new, future in group:  # find the culprit; the others still go in
                    try:
                        (view,) = await self._commit([new])
                    except Exception as one_exc:
                        _settle(future, one_exc)
                    else:
                        _settle(future, view)
                continue
            for (_, future), view in zip(group, views, strict=True):
                _settle(future, view)

    async def _commit(self, news: list[NewGeneration]) -> list[c.GenerationView | None]:
        async with self.ctx.transaction() as conn:
            views = await insert_generations(self.ctx, conn, news)
        self.ctx.notify()
        return views


def _settle(
    future: asyncio.Future[c.GenerationView | None], outcome: c.GenerationView | Exception | None
) -> None:
    if future.done():  # the caller gave up (query timeout); the write stands
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def on_create(writer: GenerationWriter, delivery: Delivery[c.CreateGenerationCommand]) -> None:
    """Write a generation the gateway accepted: its row, history and announcement are committed
    together (grouped with concurrent creates by ``writer``); the scheduler dispatches it when a
    slot is free. A redelivered command finds the row written and changes nothing."""
    command = delivery.message
    await writer.write(
        NewGeneration(
            command.generation_id,
            command.user_id,
            command.model,
            command.parameters,
            command.reuse,
            command.priority,
            trace_context=capture_trace_context(),
            accepted_at=command.accepted_at,
        )
    )
