"""Command, query and event handlers of the orchestrator.

Every handler has one shape: open a transaction, lock the generation row, decide with the pure
state machine, persist (generation, status history, errors, performance) and enqueue the
messages that follow into the outbox, commit, wake the relay. Events that belong to an older
attempt or arrive after a terminal state are ignored, which makes redelivery harmless.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import DateTime, Integer, Uuid, and_, bindparam, case, func, null, or_, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.common import contracts as c
from picture.common.contracts import ErrorInfo, ErrorKind, GenerationStatus
from picture.common.ids import derived_id
from picture.common.messaging import Delivery, QueryFailed
from picture.common.observability import carrier_exemplar
from picture.common.telemetry import capture_trace_context
from picture.orchestrator.outbox import OutboxMessage, OutboxRelay, enqueue, enqueue_all, outbox_message
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
DEDUP_HITS = Counter(
    "picture_generation_dedup_hits_total",
    "Generations answered with the stored image of an identical recent request, by model.",
    ["model"],
)
GENERATIONS_CANCELLED = Counter(
    "picture_generations_cancelled_total", "Generations cancelled by their user, by model.", ["model"]
)

ACTIVE_STATUSES = ("pending", "queued", "processing", "downloading")
CANCELLED_MESSAGE = "Cancelled by user"


@dataclass(frozen=True)
class Context:
    engine: AsyncEngine
    relay: OutboxRelay
    settings: OrchestratorSettings
    # Set after every commit that frees a slot or queues work: the scheduler runs a round.
    scheduler_wake: asyncio.Event = field(default_factory=asyncio.Event)
    writer: GenerationWriter = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "writer", GenerationWriter(self))  # frozen: set once, here

    def notify(self, *, schedule: bool = True) -> None:
        """After a commit: the relay publishes its messages; the scheduler runs a round unless
        ``schedule`` is False (the change neither freed a slot nor queued work)."""
        self.relay.notify()
        if schedule:
            self.scheduler_wake.set()


def _now() -> datetime:
    return datetime.now(UTC)


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


# ------------------------------------------------------------------------------ views


_AHEAD = generations.alias("ahead")


def _ahead_of(priority: Any, created_at: Any, ident: Any) -> Any:
    """Waiting generations dispatched before the one with this priority, creation time and id
    (higher priority, then older); bind parameters, or the outer query's columns."""
    ahead = _AHEAD
    return (
        select(func.count())
        .select_from(ahead)
        .where(
            ahead.c.status == GenerationStatus.QUEUED.value,
            ahead.c.dispatched_at.is_(None),
            or_(
                ahead.c.priority > priority,
                and_(
                    ahead.c.priority == priority,
                    or_(
                        ahead.c.created_at < created_at,
                        and_(ahead.c.created_at == created_at, ahead.c.id < ident),
                    ),
                ),
            ),
        )
        .scalar_subquery()
    )


# built once: constructing the aliased subquery cost more CPU than running it
_QUEUE_AHEAD = select(
    _ahead_of(
        bindparam("priority", type_=Integer),
        bindparam("created_at", type_=DateTime(timezone=True)),
        bindparam("id", type_=Uuid),
    )
)
_HISTORY = (
    select(
        func.coalesce(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object(
                        "to_status",
                        status_history.c.to_status,
                        "at",
                        status_history.c.at,
                        "reason",
                        status_history.c.reason,
                    ),
                    status_history.c.id,
                )
            ),
            text("'[]'::json"),
        )
    )
    .where(status_history.c.generation_id == generations.c.id)
    .scalar_subquery()
    .label("history")
)
_POSITION = (
    case(
        (
            and_(
                generations.c.status == GenerationStatus.QUEUED.value,
                generations.c.dispatched_at.is_(None),
            ),
            _ahead_of(generations.c.priority, generations.c.created_at, generations.c.id) + 1,
        ),
        else_=None,
    )
).label("queue_position")


async def load_view(
    conn: AsyncConnection, generation_id: uuid.UUID, slots: int = 20
) -> c.GenerationView | None:
    """The generation, its history and its queue position, in one round trip."""
    row = (
        await conn.execute(select(generations, _HISTORY, _POSITION).where(generations.c.id == generation_id))
    ).first()
    if row is None:
        return None
    history = [
        _HistoryEntry(h["to_status"], datetime.fromisoformat(h["at"]), h["reason"]) for h in row.history
    ]
    return _view(row, history, row.queue_position, slots)


@dataclass(frozen=True)
class _HistoryEntry:
    to_status: str
    at: datetime
    reason: str | None


def is_waiting(row: Any) -> bool:
    return bool(row.status == GenerationStatus.QUEUED.value and row.dispatched_at is None)


async def queue_position(conn: AsyncConnection, row: Any) -> int | None:
    """1 + the waiting generations dispatched before this one (higher priority, then older)."""
    if not is_waiting(row):
        return None
    values = {"priority": row.priority, "created_at": row.created_at, "id": row.id}
    ahead = (await conn.execute(_QUEUE_AHEAD, values)).scalar_one()
    return int(ahead) + 1


def _view(row: Any, history: Any, position: int | None = None, slots: int = 20) -> c.GenerationView:
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
        queue_position=position,
        eta_seconds=_eta(row, position, slots),
        batch_id=row.batch_id,
        batch_index=row.batch_index,
        priority=row.priority,
    )


def _eta(row: Any, position: int | None, slots: int) -> float | None:
    """Rough: the generations ahead run ``slots`` at a time, each taking the model's estimate."""
    if position is None:
        return None
    estimate = float(row.model_spec.get("estimated_time_seconds", 10.0))
    return math.ceil(position / max(slots, 1)) * estimate


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
            (new_row.completed_at - new_row.created_at).total_seconds(),
            carrier_exemplar(new_row.trace_context),
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


async def _announce(conn: AsyncConnection, generation_id: uuid.UUID, slots: int = 20) -> c.GenerationView:
    view = await load_view(conn, generation_id, slots)
    assert view is not None
    await _announce_view(conn, view)
    return view


async def _announce_view(conn: AsyncConnection, view: c.GenerationView) -> None:
    await enqueue_all(conn, [_update_message(view)])


def _update_message(view: c.GenerationView, trace_context: dict[str, str] | None = None) -> OutboxMessage:
    """The GENERATION_UPDATED outbox message of ``view``; in the given trace context when it is
    written on behalf of another request (group commit), else the current one."""
    return outbox_message(
        c.GENERATION_UPDATED,
        c.GenerationUpdatedEvent(generation=view),
        trace_context=trace_context,
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
        # Provenance media writes into the stored image (issue #6).
        model=row.model,
        prompt=(row.parameters or {}).get("prompt"),
        seed=(row.parameters or {}).get("seed"),
    )


# ------------------------------------------------------------------------------ queries


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


async def _reusable(ctx: Context, conn: AsyncConnection, new: NewGeneration, key: str | None) -> Any:
    if not new.reuse or key is None or ctx.settings.dedup_window_seconds <= 0:
        return None
    since = _now() - timedelta(seconds=ctx.settings.dedup_window_seconds)
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
    now = _now()
    planned: list[tuple[NewGeneration, dict[str, Any], list[Any], Any]] = []
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
            "created_at": now,
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
        steps = [
            (None, GenerationStatus.PENDING, "accepted"),
            (GenerationStatus.PENDING, GenerationStatus.QUEUED, "queued for prediction"),
        ]
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
            reason = f"reused the image of identical generation {source.id}"
            steps += [
                (GenerationStatus.QUEUED, GenerationStatus.PROCESSING, reason),
                (GenerationStatus.PROCESSING, GenerationStatus.DOWNLOADING, reason),
                (GenerationStatus.DOWNLOADING, GenerationStatus.COMPLETED, reason),
            ]
        for current, target, _ in steps[1:]:
            assert current is not None
            transition(current, target)
        planned.append((new, values, steps, source))
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
    written = [(new, steps, source) for new, _, steps, source in planned if new.generation_id in inserted]
    if not written:
        return [None] * len(planned)
    await conn.execute(
        status_history.insert(),
        [
            {
                "generation_id": new.generation_id,
                "from_status": current.value if current else None,
                "to_status": target.value,
                "reason": reason,
                "at": now,
            }
            for new, steps, _ in written
            for current, target, reason in steps
        ],
    )
    waiting = [new.generation_id for new, _, _ in written if is_waiting(inserted[new.generation_id])]
    positions: dict[uuid.UUID, int] = {}
    if waiting:
        positions = {
            r.id: r.queue_position
            for r in await conn.execute(
                select(generations.c.id, _POSITION).where(generations.c.id.in_(waiting))
            )
        }
    views: dict[uuid.UUID, c.GenerationView] = {}
    messages = []
    for new, steps, source in written:
        row = inserted[new.generation_id]
        if source is not None:
            DEDUP_HITS.labels(new.model.name).inc()
            await _record_performance(conn, row)
            GENERATIONS_FINISHED.labels(new.model.name, "completed").inc()
        history = [_HistoryEntry(target.value, now, reason) for _, target, reason in steps]
        view = _view(row, history, positions.get(row.id), ctx.settings.global_concurrency)
        views[row.id] = view
        messages.append(_update_message(view, new.trace_context))
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
        async with self.ctx.engine.begin() as conn:
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


async def create_generation(ctx: Context, req: c.CreateGenerationRequest) -> c.GenerationReply:
    """Accept a generation: its row, history and announcement are committed together (grouped
    with concurrent creates); the scheduler dispatches it when a slot is free."""
    view = await ctx.writer.write(
        NewGeneration(
            req.generation_id,
            req.user_id,
            req.model,
            req.parameters,
            req.reuse,
            req.priority,
            trace_context=capture_trace_context(),
        )
    )
    if view is None:
        # the same id again: answer with what exists, if it is theirs
        async with ctx.engine.connect() as conn:
            view = await load_view(conn, req.generation_id, ctx.settings.global_concurrency)
        if view is None or view.user_id != req.user_id:
            raise QueryFailed(c.QueryErrorCode.CONFLICT, "generation id already used")
    return c.GenerationReply(generation=view)


async def get_generation(ctx: Context, req: c.GetGenerationRequest) -> c.GenerationReply:
    async with ctx.engine.connect() as conn:
        view = await load_view(conn, req.generation_id, ctx.settings.global_concurrency)
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
    if stage == "predict":  # back to the scheduler: the slot is freed during the back-off
        values = {
            "attempt": attempt,
            "retry_count": row.retry_count + 1,
            "prediction_id": None,
            "dispatched_at": None,
            "available_at": retry_after,
        }
        if row.status == GenerationStatus.QUEUED.value:  # failed before "started" was seen
            await conn.execute(
                update(generations).where(generations.c.id == row.id).values(updated_at=_now(), **values)
            )
            await conn.execute(
                status_history.insert().values(
                    generation_id=row.id, from_status=row.status, to_status=row.status, reason=reason
                )
            )
        else:
            await _move(conn, row, GenerationStatus.QUEUED, reason, **values)
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
    frees_slot = True  # unless the generation stays in flight (started, or on to download)
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
                frees_slot = False
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
                frees_slot = False
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
            timeout = ctx.settings.total_timeout_seconds
            expired = event.status is c.PredictionStatus.CANCELED or error.code == "prediction_aborted"
            # The adapter enforces the command's deadline (created_at + total timeout) with a
            # whole-second Cancel-After, so its cancel may come up to a second early.
            if expired and _now() >= row.created_at + timedelta(seconds=timeout - 1.5):
                error = ErrorInfo(
                    kind=ErrorKind.PERMANENT,
                    code="timeout",
                    message=f"The generation did not finish within {timeout:g} seconds",
                )
            await _fail_or_retry(ctx, conn, row, error, "predict")
        await _announce(conn, event.generation_id, ctx.settings.global_concurrency)
    ctx.notify(schedule=frees_slot)


async def on_media_stored(ctx: Context, delivery: Delivery[c.MediaStoredEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if (
            row is not None
            and row.attempt == event.attempt
            and row.status in (GenerationStatus.CANCELLED.value, GenerationStatus.FAILED.value)
            and row.image_id is None
        ):  # stored after a cancel or a timeout: nobody will show these objects
            await enqueue(
                conn, c.DELETE_OBJECTS, c.DeleteObjectsCommand(keys=tuple(o.key for o in event.objects))
            )
            ctx.notify()
            return
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
    ctx.notify(schedule=False)  # still in flight until the catalog has the image


async def on_media_failed(ctx: Context, delivery: Delivery[c.MediaFailedEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if _stale(row, event.attempt) or row.status != GenerationStatus.DOWNLOADING.value:
            return
        await _fail_or_retry(ctx, conn, row, event.error, "ingest")
        await _announce(conn, event.generation_id, ctx.settings.global_concurrency)
    ctx.notify()


async def on_image_created(ctx: Context, delivery: Delivery[c.ImageCreatedEvent]) -> None:
    event = delivery.message
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, event.generation_id)
        if row is None or row.image_id != event.image_id:
            return
        if row.status != GenerationStatus.DOWNLOADING.value:
            return
        await _move(conn, row, GenerationStatus.COMPLETED, "image stored", completed_at=_now())
        await _announce(conn, event.generation_id, ctx.settings.global_concurrency)
    ctx.notify()


# ------------------------------------------------------------------------------ cancel, deadlines


async def end_generation(
    ctx: Context,
    conn: AsyncConnection,
    row: Any,
    target: GenerationStatus,
    code: str,
    message: str,
) -> None:
    """Cancel or fail a non-terminal generation; a dispatched one is cancelled at Replicate too."""
    await _move(conn, row, target, message, error_code=code, error_message=message, completed_at=_now())
    if row.dispatched_at is not None and row.status != GenerationStatus.DOWNLOADING.value:
        await enqueue(
            conn,
            c.CANCEL_PREDICTION,
            c.CancelPredictionCommand(generation_id=row.id, attempt=row.attempt),
        )
    await _announce(conn, row.id, ctx.settings.global_concurrency)


async def cancel_row(ctx: Context, conn: AsyncConnection, row: Any) -> bool:
    if GenerationStatus(row.status).is_terminal:
        return False
    await end_generation(ctx, conn, row, GenerationStatus.CANCELLED, "cancelled", CANCELLED_MESSAGE)
    GENERATIONS_CANCELLED.labels(row.model).inc()
    return True


async def cancel_generation(ctx: Context, req: c.CancelGenerationRequest) -> c.GenerationReply:
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, req.generation_id)
        if row is None or row.user_id != req.user_id:
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "generation not found")
        if not await cancel_row(ctx, conn, row):
            raise QueryFailed(c.QueryErrorCode.CONFLICT, f"the generation is already {row.status}")
        view = await load_view(conn, req.generation_id, ctx.settings.global_concurrency)
    ctx.notify()
    assert view is not None
    return c.GenerationReply(generation=view)


# ------------------------------------------------------------------------------ poison


async def on_poison(ctx: Context, delivery: Delivery[Any], exc: BaseException) -> None:
    """An event failed on every delivery: end its generation as failed instead of leaving it
    waiting for the sweeper's timeout."""
    generation_id = getattr(delivery.message, "generation_id", None)
    if generation_id is None:
        return
    async with ctx.engine.begin() as conn:
        row = await _lock(conn, generation_id)
        if row is None or GenerationStatus(row.status).is_terminal:
            return
        await conn.execute(
            generation_errors.insert().values(
                generation_id=row.id,
                user_id=row.user_id,
                model=row.model,
                error_type="poison_message",
                error_kind=ErrorKind.PERMANENT.value,
                error_message=f"{delivery.envelope.type} could not be processed",
                error_details={"reason": type(exc).__name__, "detail": str(exc)[:500]},
                retry_count=row.retry_count,
                max_retries=ctx.settings.max_retries,
                recovery_action="fail",
            )
        )
        await end_generation(
            ctx,
            conn,
            row,
            GenerationStatus.FAILED,
            "poison_message",
            "The generation could not be processed; please try again",
        )
    ctx.notify()


# ------------------------------------------------------------------------------ lists


def encode_cursor(at: datetime, ident: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{ident}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(at), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise QueryFailed(c.QueryErrorCode.INVALID, "invalid cursor", "cursor") from exc


async def list_generations(ctx: Context, req: c.ListGenerationsRequest) -> c.GenerationListReply:
    query = select(generations).where(generations.c.user_id == req.user_id)
    if req.status is not None:
        query = query.where(generations.c.status == req.status.value)
    if req.batch_id is not None:
        query = query.where(generations.c.batch_id == req.batch_id)
    if req.cursor:
        at, ident = decode_cursor(req.cursor)
        query = query.where(
            or_(
                generations.c.created_at < at,
                and_(generations.c.created_at == at, generations.c.id < ident),
            )
        )
    query = query.order_by(generations.c.created_at.desc(), generations.c.id.desc()).limit(req.limit + 1)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        page = rows[: req.limit]
        views = []
        for row in page:
            position = await queue_position(conn, row)
            views.append(_view(row, (), position, ctx.settings.global_concurrency))
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > req.limit else None
    return c.GenerationListReply(generations=tuple(views), next_cursor=next_cursor)


# ------------------------------------------------------------------------------ error statistics


async def error_stats(ctx: Context, req: c.ErrorStatsRequest) -> c.ErrorStatsReply:
    until = req.until or _now()
    since = req.since or until - timedelta(days=7)
    if since > until:
        raise QueryFailed(c.QueryErrorCode.INVALID, "since must not be after until", "since")
    day = func.to_char(func.timezone("UTC", generation_errors.c.created_at), text("'YYYY-MM-DD'"))
    query = (
        select(
            day.label("day"),
            generation_errors.c.model,
            generation_errors.c.error_type,
            generation_errors.c.error_kind,
            func.count().label("count"),
        )
        .where(generation_errors.c.created_at >= since, generation_errors.c.created_at < until)
        .group_by(
            day, generation_errors.c.model, generation_errors.c.error_type, generation_errors.c.error_kind
        )
        .order_by(day, generation_errors.c.model, generation_errors.c.error_type)
    )
    if req.user_id is not None:
        query = query.where(generation_errors.c.user_id == req.user_id)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    stats = tuple(
        c.ErrorStatsRow(
            day=r.day,
            model=r.model,
            error_type=r.error_type,
            error_kind=ErrorKind(r.error_kind),
            count=r.count,
        )
        for r in rows
    )
    return c.ErrorStatsReply(since=since, until=until, total=sum(r.count for r in stats), rows=stats)
