"""Moving a generation: lock its row, persist what the state machine decided (status and
history, the error, performance once terminal), send the commands that follow and announce the
change, in the caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from picture.common import contracts as c
from picture.common.contracts import ErrorInfo, GenerationStatus
from picture.common.messaging import QueryFailed
from picture.common.observability import carrier_exemplar
from picture.orchestrator import messages
from picture.orchestrator.context import Context
from picture.orchestrator.metrics import (
    GENERATION_DURATION,
    GENERATION_RETRIES,
    GENERATIONS_CANCELLED,
    GENERATIONS_FINISHED,
)
from picture.orchestrator.outbox import OutboxMessage, enqueue, enqueue_all, outbox_message
from picture.orchestrator.state_machine import (
    Cancel,
    Decision,
    DiscardObjects,
    End,
    Event,
    Generation,
    Ignore,
    Move,
    RecordImage,
    Retry,
    decide,
    transition,
)
from picture.orchestrator.tables import generation_errors, generation_performance, generations, status_history
from picture.orchestrator.views import (
    HISTORY,
    HistoryEntry,
    duration_ms,
    generation_view,
    history_entries,
    is_waiting,
    load_view,
)

_LOCK = (
    select(generations, HISTORY).where(generations.c.id == bindparam("id")).with_for_update(of=generations)
)


async def lock(conn: AsyncConnection, generation_id: uuid.UUID) -> Any:
    """The generation's row with its history, locked until the transaction ends; None if there
    is none. (With the history at hand, the view announced after a change is built here instead
    of read back.)"""
    return (await conn.execute(_LOCK, {"id": generation_id})).first()


def snapshot(row: Any) -> Generation | None:
    """What the state machine decides on, from a generations row."""
    if row is None:
        return None
    return Generation(
        id=row.id,
        status=GenerationStatus(row.status),
        created_at=row.created_at,
        attempt=row.attempt,
        retry_count=row.retry_count,
        started_at=row.started_at,
        dispatched=row.dispatched_at is not None,
        prediction_id=row.prediction_id,
        image_id=row.image_id,
    )


async def settle(ctx: Context, conn: AsyncConnection, row: Any, event: Event) -> Decision:
    """Decide what ``event`` does to the locked ``row`` (None: no such generation), persist the
    decision and return it."""
    now = ctx.now()
    decision = decide(snapshot(row), event, now, ctx.settings)
    await _persist(ctx, conn, row, decision, now)
    return decision


async def _persist(ctx: Context, conn: AsyncConnection, row: Any, decision: Decision, now: datetime) -> None:
    """Write ``decision`` about the locked ``row``, taken at ``now``, and enqueue what follows.
    A generation that enters (or stays in) downloading is fetched by media; one that ends while
    its prediction may still run has it cancelled; a changed generation is announced."""
    match decision:
        case Ignore():
            return
        case DiscardObjects(keys=keys):
            await enqueue(conn, c.DELETE_OBJECTS, c.DeleteObjectsCommand(keys=keys))
            return
        case RecordImage(image_id=image_id, objects=objects):
            await conn.execute(
                update(generations)
                .where(generations.c.id == row.id)
                .values(
                    image_id=image_id,
                    stored_objects=[o.model_dump(mode="json") for o in objects],
                    updated_at=now,
                )
            )
            await enqueue(conn, c.RECORD_IMAGE, messages.record_image_command(row, image_id, objects))
            return
        case Retry(stage=stage, error=error, not_before=not_before):
            await _record_error(ctx, conn, row, error, f"retry_{stage}", not_before)
            GENERATION_RETRIES.labels(row.model, stage.value).inc()
        case End(error=error) if error is not None:
            await _record_error(ctx, conn, row, error, "fail")
    before = row
    # a row read by lock() has its history: the new view needs no read back (unless it waits
    # for a slot: its queue position depends on the other generations)
    history_column = row._mapping.get("history")
    history = history_entries(history_column) if history_column is not None else None
    for move in decision.moves:
        row = await _apply_move(conn, row, move, now)
        if history is not None:
            history.append(HistoryEntry(move.target.value, now, move.reason))
    # what follows and the announcement: one outbox statement
    follow: list[OutboxMessage] = []
    if row.status == GenerationStatus.DOWNLOADING.value:
        delay = decision.delay_seconds if isinstance(decision, Retry) else 0.0
        follow.append(outbox_message(c.INGEST, messages.ingest_command(row), delay_seconds=delay))
    if isinstance(decision, End) and decision.cancel_prediction:
        follow.append(outbox_message(c.CANCEL_PREDICTION, messages.cancel_prediction_command(before)))
    slots = ctx.settings.global_concurrency
    view = (
        generation_view(row, history, None, slots)
        if history is not None and not is_waiting(row)
        else await load_view(conn, row.id, slots)
    )
    assert view is not None
    await enqueue_all(conn, [*follow, messages.update_message(view)])


async def _apply_move(conn: AsyncConnection, row: Any, move: Move, at: datetime) -> Any:
    """Write one status change (checked against the table) and its history; a terminal one
    records the generation's performance. Returns the new row."""
    current = GenerationStatus(row.status)
    transition(current, move.target)
    new_row = (
        await conn.execute(
            update(generations)
            .where(generations.c.id == row.id)
            .values(
                status=move.target.value, updated_at=at, version=generations.c.version + 1, **move.changes
            )
            .returning(*generations.c)
        )
    ).one()
    await conn.execute(
        status_history.insert().values(
            generation_id=row.id,
            from_status=current.value,
            to_status=move.target.value,
            reason=move.reason,
            at=at,
        )
    )
    if move.target.is_terminal:
        await record_performance(conn, new_row)
        outcome = move.target.value
        GENERATIONS_FINISHED.labels(row.model, outcome).inc()
        GENERATION_DURATION.labels(row.model, outcome).observe(
            (new_row.completed_at - new_row.created_at).total_seconds(),
            carrier_exemplar(new_row.trace_context),
        )
    return new_row


async def record_performance(conn: AsyncConnection, row: Any) -> None:
    """The terminal generation's figures, once."""
    params = row.parameters
    await conn.execute(
        insert(generation_performance)
        .values(
            generation_id=row.id,
            user_id=row.user_id,
            model=row.model,
            width=params["width"],
            height=params["height"],
            steps=params.get("steps"),
            status=row.status,
            retry_count=row.retry_count,
            queue_time_ms=duration_ms(row.created_at, row.started_at),
            processing_time_ms=duration_ms(row.started_at, row.completed_at),
            total_time_ms=duration_ms(row.created_at, row.completed_at),
            error_message=row.error_message,
            started_at=row.started_at,
            completed_at=row.completed_at,
        )
        .on_conflict_do_nothing(index_elements=["generation_id"])
    )


async def _record_error(
    ctx: Context,
    conn: AsyncConnection,
    row: Any,
    error: ErrorInfo,
    recovery_action: str,
    retry_after: datetime | None = None,
) -> None:
    await conn.execute(
        generation_errors.insert().values(
            generation_id=row.id,
            user_id=row.user_id,
            model=row.model,
            error_type=error.code,
            error_kind=error.kind.value,
            error_message=error.message,
            error_details=error.details,
            retry_count=row.retry_count,
            max_retries=ctx.settings.max_retries,
            retry_after=retry_after,
            recovery_action=recovery_action,
        )
    )


# ------------------------------------------------------------------------------ cancel


async def cancel_row(ctx: Context, conn: AsyncConnection, row: Any) -> bool:
    """Cancel the locked generation unless it is over. Returns whether it was cancelled."""
    if isinstance(await settle(ctx, conn, row, Cancel()), Ignore):
        return False
    GENERATIONS_CANCELLED.labels(row.model).inc()
    return True


async def cancel_generation(ctx: Context, req: c.CancelGenerationRequest) -> c.GenerationReply:
    async with ctx.transaction() as conn:
        row = await lock(conn, req.generation_id)
        if row is None or row.user_id != req.user_id:
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "generation not found")
        if not await cancel_row(ctx, conn, row):
            raise QueryFailed(c.QueryErrorCode.CONFLICT, f"the generation is already {row.status}")
        view = await load_view(conn, req.generation_id, ctx.settings.global_concurrency)
    ctx.notify()
    assert view is not None
    return c.GenerationReply(generation=view)
