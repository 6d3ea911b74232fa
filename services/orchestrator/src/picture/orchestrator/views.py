"""What clients read about generations: the view of one (with its history, queue position and
ETA), pages of a user's generations, and error statistics."""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, Uuid, and_, bindparam, case, func, or_, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection

from picture.common import contracts as c
from picture.common.contracts import ErrorKind, GenerationStatus
from picture.common.messaging import QueryFailed
from picture.orchestrator.context import Context
from picture.orchestrator.tables import generation_errors, generations, status_history


@dataclass(frozen=True)
class HistoryEntry:
    to_status: str
    at: datetime
    reason: str | None


def duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


def is_waiting(row: Any) -> bool:
    """Queued and not granted a slot yet: it has a place in the queue."""
    return bool(row.status == GenerationStatus.QUEUED.value and row.dispatched_at is None)


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
HISTORY = (
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
"""A column of a generations query: the row's status history (JSON, oldest first)."""
# A column of a generations query: the row's queue position, NULL unless waiting.
QUEUE_POSITION = (
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
        await conn.execute(
            select(generations, HISTORY, QUEUE_POSITION).where(generations.c.id == generation_id)
        )
    ).first()
    if row is None:
        return None
    return generation_view(row, history_entries(row.history), row.queue_position, slots)


def history_entries(history: list[dict[str, Any]]) -> list[HistoryEntry]:
    """The entries of a :data:`HISTORY` column."""
    return [HistoryEntry(h["to_status"], datetime.fromisoformat(h["at"]), h["reason"]) for h in history]


async def queue_position(conn: AsyncConnection, row: Any) -> int | None:
    """1 + the waiting generations dispatched before this one (higher priority, then older)."""
    if not is_waiting(row):
        return None
    values = {"priority": row.priority, "created_at": row.created_at, "id": row.id}
    ahead = (await conn.execute(_QUEUE_AHEAD, values)).scalar_one()
    return int(ahead) + 1


def generation_view(
    row: Any, history: Iterable[HistoryEntry] = (), position: int | None = None, slots: int = 20
) -> c.GenerationView:
    """The client's view of a generations row (with ``slots`` generations running at a time)."""
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
        queue_time_ms=duration_ms(row.created_at, row.started_at),
        processing_time_ms=duration_ms(row.started_at, row.completed_at),
        total_time_ms=duration_ms(row.created_at, row.completed_at),
        image=image,
        history=tuple(
            c.StatusChange(status=GenerationStatus(h.to_status), at=h.at, reason=h.reason) for h in history
        ),
        queue_position=position,
        eta_seconds=_eta(row, position, slots),
        batch_id=row.batch_id,
        batch_index=row.batch_index,
        priority=row.priority,
        version=row.version,
    )


def _eta(row: Any, position: int | None, slots: int) -> float | None:
    """Rough: the generations ahead run ``slots`` at a time, each taking the model's estimate."""
    if position is None:
        return None
    estimate = float(row.model_spec.get("estimated_time_seconds", 10.0))
    return math.ceil(position / max(slots, 1)) * estimate


async def get_generation(ctx: Context, req: c.GetGenerationRequest) -> c.GenerationReply:
    async with ctx.engine.connect() as conn:
        view = await load_view(conn, req.generation_id, ctx.settings.global_concurrency)
    if view is None or view.user_id != req.user_id:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "generation not found")
    return c.GenerationReply(generation=view)


# ------------------------------------------------------------------------------ pages


def encode_cursor(at: datetime, ident: uuid.UUID) -> str:
    """The cursor of the page after the row created at ``at`` with id ``ident``."""
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
            views.append(generation_view(row, (), position, ctx.settings.global_concurrency))
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > req.limit else None
    return c.GenerationListReply(generations=tuple(views), next_cursor=next_cursor)


# ------------------------------------------------------------------------------ error statistics


async def error_stats(ctx: Context, req: c.ErrorStatsRequest) -> c.ErrorStatsReply:
    until = req.until or ctx.now()
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
