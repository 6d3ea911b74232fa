"""Command, query and event handlers of the orchestrator.

Every handler has one shape: open a transaction, lock the generation row, decide with the pure
state machine, persist (generation, status history, errors, performance) and enqueue the
messages that follow into the outbox, commit, wake the relay. Events that belong to an older
attempt or arrive after a terminal state are ignored, which makes redelivery harmless.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.common import contracts as c
from picture.common.contracts import ErrorInfo, ErrorKind, GenerationStatus
from picture.common.ids import derived_id
from picture.common.messaging import Delivery, QueryFailed
from picture.orchestrator.outbox import OutboxRelay, enqueue
from picture.orchestrator.settings import OrchestratorSettings
from picture.orchestrator.state_machine import transition
from picture.orchestrator.tables import (
    generation_errors,
    generation_performance,
    generations,
    status_history,
)

log = logging.getLogger(__name__)

GENERATIONS_FINISHED = Counter(
    "picture_generations_finished_total",
    "Generations that reached a terminal state, by model and outcome.",
    ["model", "outcome"],
)
GENERATION_DURATION = Histogram(
    "picture_generation_duration_seconds",
    "End-to-end generation time (accepted to terminal), by model and outcome.",
    ["model", "outcome"],
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600),
)
GENERATION_QUEUE_WAIT = Histogram(
    "picture_generation_queue_wait_seconds",
    "Time from acceptance until the prediction started, by model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
GENERATION_RETRIES = Counter(
    "picture_generation_retries_total", "Retries scheduled, by model and stage.", ["model", "stage"]
)


@dataclass(frozen=True)
class Context:
    engine: AsyncEngine
    relay: OutboxRelay
    settings: OrchestratorSettings


def _now() -> datetime:
    return datetime.now(UTC)


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


# ------------------------------------------------------------------------------ views


async def load_view(conn: AsyncConnection, generation_id: uuid.UUID) -> c.GenerationView | None:
    row = (await conn.execute(select(generations).where(generations.c.id == generation_id))).first()
    if row is None:
        return None
    history = (
        await conn.execute(
            select(status_history.c.to_status, status_history.c.at, status_history.c.reason)
            .where(status_history.c.generation_id == generation_id)
            .order_by(status_history.c.id)
        )
    ).all()
    return _view(row, history)


def _view(row: Any, history: Any) -> c.GenerationView:
    status = GenerationStatus(row.status)
    image = None
    if status is GenerationStatus.COMPLETED and row.image_id and row.stored_objects:
        objects = {o["role"]: c.StoredObject.model_validate(o) for o in row.stored_objects}
        original = objects["original"]
        thumbnail = objects.get("thumbnail")
        image = c.ImageView(
            id=row.image_id,
            generation_id=row.id,
            user_id=row.user_id,
            width=original.width,
            height=original.height,
            format=original.content_type.split("/")[-1].split("+")[0],
            file_size=original.size,
            content_key=original.key,
            thumbnail_key=thumbnail.key if thumbnail else None,
            created_at=row.completed_at,
        )
    return c.GenerationView(
        id=row.id,
        user_id=row.user_id,
        status=status,
        model=row.model,
        parameters=c.GenerationParameters.model_validate(row.parameters),
        error_message=row.error_message,
        retry_count=row.retry_count,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        queue_time_ms=_ms(row.created_at, row.started_at),
        processing_time_ms=_ms(row.started_at, row.completed_at),
        total_time_ms=_ms(row.created_at, row.completed_at),
        image=image,
        history=tuple(
            c.StatusChange(status=GenerationStatus(h.to_status), at=h.at, reason=h.reason) for h in history
        ),
    )


# ------------------------------------------------------------------------------ persistence


async def _lock(conn: AsyncConnection, generation_id: uuid.UUID) -> Any:
    return (
        await conn.execute(select(generations).where(generations.c.id == generation_id).with_for_update())
    ).first()


async def _move(
    conn: AsyncConnection,
    row: Any,
    target: GenerationStatus,
    reason: str | None,
    **values: Any,
) -> Any:
    """Apply one transition: check it, update the row, write the history. Returns the new row."""
    current = GenerationStatus(row.status)
    transition(current, target)
    now = _now()
    new_row = (
        await conn.execute(
            update(generations)
            .where(generations.c.id == row.id)
            .values(status=target.value, updated_at=now, **values)
            .returning(*generations.c)
        )
    ).one()
    await conn.execute(
        status_history.insert().values(
            generation_id=row.id,
            from_status=current.value,
            to_status=target.value,
            reason=reason,
            at=now,
        )
    )
    if target.is_terminal:
        await _record_performance(conn, new_row)
        outcome = target.value
        GENERATIONS_FINISHED.labels(row.model, outcome).inc()
        GENERATION_DURATION.labels(row.model, outcome).observe(
            (new_row.completed_at - new_row.created_at).total_seconds()
        )
    return new_row


async def _record_performance(conn: AsyncConnection, row: Any) -> None:
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
            queue_time_ms=_ms(row.created_at, row.started_at),
            processing_time_ms=_ms(row.started_at, row.completed_at),
            total_time_ms=_ms(row.created_at, row.completed_at),
            error_message=row.error_message,
            started_at=row.started_at,
            completed_at=row.completed_at,
        )
        .on_conflict_do_nothing(index_elements=["generation_id"])
    )


async def _announce(conn: AsyncConnection, generation_id: uuid.UUID) -> None:
    view = await load_view(conn, generation_id)
    assert view is not None
    await enqueue(
        conn,
        c.GENERATION_UPDATED,
        c.GenerationUpdatedEvent(generation=view),
        user_id=view.user_id,
        generation_id=view.id,
    )


def _predict_command(row: Any, attempt: int) -> c.PredictCommand:
    return c.PredictCommand(
        generation_id=row.id,
        user_id=row.user_id,
        attempt=attempt,
        model=c.ModelSpec.model_validate(row.model_spec),
        parameters=c.GenerationParameters.model_validate(row.parameters),
    )


def _ingest_command(row: Any, attempt: int) -> c.IngestCommand:
    return c.IngestCommand(
        generation_id=row.id,
        user_id=row.user_id,
        attempt=attempt,
        source_urls=tuple(row.output_urls or ()),
    )


# ------------------------------------------------------------------------------ queries


async def create_generation(ctx: Context, req: c.CreateGenerationRequest) -> c.GenerationReply:
    """Accept a generation: one transaction writes it, its history and its first command."""
    async with ctx.engine.begin() as conn:
        now = _now()
        inserted = (
            await conn.execute(
                insert(generations)
                .values(
                    id=req.generation_id,
                    user_id=req.user_id,
                    status=GenerationStatus.QUEUED.value,
                    model=req.model.name,
                    model_spec=req.model.model_dump(mode="json"),
                    parameters=req.parameters.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(*generations.c)
            )
        ).first()
        if inserted is None:  # the same id again: answer with what exists, if it is theirs
            view = await load_view(conn, req.generation_id)
            if view is None or view.user_id != req.user_id:
                raise QueryFailed(c.QueryErrorCode.CONFLICT, "generation id already used")
            return c.GenerationReply(generation=view)
        await conn.execute(
            status_history.insert(),
            [
                {
                    "generation_id": req.generation_id,
                    "from_status": None,
                    "to_status": GenerationStatus.PENDING.value,
                    "reason": "accepted",
                    "at": now,
                },
                {
                    "generation_id": req.generation_id,
                    "from_status": GenerationStatus.PENDING.value,
                    "to_status": GenerationStatus.QUEUED.value,
                    "reason": "queued for prediction",
                    "at": now,
                },
            ],
        )
        await enqueue(conn, c.PREDICT, _predict_command(inserted, 1))
        await _announce(conn, req.generation_id)
        view = await load_view(conn, req.generation_id)
    ctx.relay.notify()
    assert view is not None
    return c.GenerationReply(generation=view)


async def get_generation(ctx: Context, req: c.GetGenerationRequest) -> c.GenerationReply:
    async with ctx.engine.connect() as conn:
        view = await load_view(conn, req.generation_id)
    if view is None or view.user_id != req.user_id:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "generation not found")
    return c.GenerationReply(generation=view)


# ------------------------------------------------------------------------------ failures


async def _fail_or_retry(ctx: Context, conn: AsyncConnection, row: Any, error: ErrorInfo, stage: str) -> None:
    """Record the error; retry a transient one while retries remain, else fail."""
    settings = ctx.settings
    retry = error.kind is ErrorKind.TRANSIENT and row.retry_count < settings.max_retries
    delays = settings.retry_delays_seconds or (0.0,)
    delay = delays[min(row.retry_count, len(delays) - 1)]
    retry_after = _now() + timedelta(seconds=delay) if retry else None
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
            max_retries=settings.max_retries,
            retry_after=retry_after,
            recovery_action=f"retry_{stage}" if retry else "fail",
        )
    )
    if not retry:
        await _move(
            conn,
            row,
            GenerationStatus.FAILED,
            error.message,
            error_code=error.code,
            error_message=error.message,
            completed_at=_now(),
        )
        return
    attempt = row.attempt + 1
    GENERATION_RETRIES.labels(row.model, stage).inc()
    reason = f"retry {row.retry_count + 1} of {settings.max_retries} in {delay:g}s: {error.message}"
    if stage == "predict":
        new_row = await _move(
            conn,
            row,
            GenerationStatus.QUEUED,
            reason,
            attempt=attempt,
            retry_count=row.retry_count + 1,
            prediction_id=None,
        )
        await enqueue(conn, c.PREDICT, _predict_command(new_row, attempt), delay_seconds=delay)
    else:  # the prediction's output is still there: fetch it again, do not pay for another
        await conn.execute(
            update(generations)
            .where(generations.c.id == row.id)
            .values(attempt=attempt, retry_count=row.retry_count + 1, updated_at=_now())
        )
        await conn.execute(
            status_history.insert().values(
                generation_id=row.id, from_status=row.status, to_status=row.status, reason=reason
            )
        )
        await enqueue(conn, c.INGEST, _ingest_command(row, attempt), delay_seconds=delay)


# ------------------------------------------------------------------------------ events


def _stale(row: Any, attempt: int) -> bool:
    return row is None or row.attempt != attempt or GenerationStatus(row.status).is_terminal


async def on_prediction(ctx: Context, delivery: Delivery[c.PredictionEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if _stale(row, event.attempt):
            return
        status = GenerationStatus(row.status)
        if event.status is c.PredictionStatus.STARTED:
            if status is GenerationStatus.QUEUED:
                now = _now()
                await _move(
                    conn,
                    row,
                    GenerationStatus.PROCESSING,
                    "prediction started",
                    started_at=row.started_at or now,
                    prediction_id=event.prediction_id,
                )
                GENERATION_QUEUE_WAIT.labels(row.model).observe((now - row.created_at).total_seconds())
            else:
                return
        elif event.status is c.PredictionStatus.SUCCEEDED:
            if status not in (GenerationStatus.QUEUED, GenerationStatus.PROCESSING):
                return
            if status is GenerationStatus.QUEUED:  # "started" not seen (lost or late)
                row = await _move(
                    conn,
                    row,
                    GenerationStatus.PROCESSING,
                    "prediction started",
                    started_at=row.started_at or _now(),
                    prediction_id=event.prediction_id,
                )
            if not event.output_urls:
                await _fail_or_retry(
                    ctx,
                    conn,
                    row,
                    ErrorInfo(
                        kind=ErrorKind.TRANSIENT, code="empty_output", message="The model returned no image"
                    ),
                    "predict",
                )
            else:
                row = await _move(
                    conn,
                    row,
                    GenerationStatus.DOWNLOADING,
                    "prediction succeeded",
                    output_urls=list(event.output_urls),
                    cost_usd=event.cost_usd,
                    predict_time_seconds=event.predict_time_seconds,
                    prediction_id=event.prediction_id or row.prediction_id,
                )
                await enqueue(conn, c.INGEST, _ingest_command(row, row.attempt))
        else:
            error = event.error or ErrorInfo(
                kind=ErrorKind.PERMANENT,
                code="prediction_canceled"
                if event.status is c.PredictionStatus.CANCELED
                else "prediction_failed",
                message="The prediction was canceled"
                if event.status is c.PredictionStatus.CANCELED
                else "The model failed without an error message",
            )
            await _fail_or_retry(ctx, conn, row, error, "predict")
        await _announce(conn, event.generation_id)
    ctx.relay.notify()


async def on_media_stored(ctx: Context, delivery: Delivery[c.MediaStoredEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if _stale(row, event.attempt) or row.status != GenerationStatus.DOWNLOADING.value:
            return
        if row.image_id is not None:
            return  # already handed to the catalog (a redelivery)
        image_id = derived_id("image", row.id)
        await conn.execute(
            update(generations)
            .where(generations.c.id == row.id)
            .values(
                image_id=image_id,
                stored_objects=[o.model_dump(mode="json") for o in event.objects],
                updated_at=_now(),
            )
        )
        params = c.GenerationParameters.model_validate(row.parameters)
        await enqueue(
            conn,
            c.RECORD_IMAGE,
            c.RecordImageCommand(
                image_id=image_id,
                generation_id=row.id,
                user_id=row.user_id,
                model=row.model,
                prompt=params.prompt,
                negative_prompt=params.negative_prompt,
                seed=params.seed,
                objects=event.objects,
            ),
        )
    ctx.relay.notify()


async def on_media_failed(ctx: Context, delivery: Delivery[c.MediaFailedEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if _stale(row, event.attempt) or row.status != GenerationStatus.DOWNLOADING.value:
            return
        await _fail_or_retry(ctx, conn, row, event.error, "ingest")
        await _announce(conn, event.generation_id)
    ctx.relay.notify()


async def on_image_created(ctx: Context, delivery: Delivery[c.ImageCreatedEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if row is None or row.image_id != event.image_id:
            return
        if row.status != GenerationStatus.DOWNLOADING.value:
            return
        await _move(conn, row, GenerationStatus.COMPLETED, "image stored", completed_at=_now())
        await _announce(conn, event.generation_id)
    ctx.relay.notify()
