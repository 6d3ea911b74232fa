"""The ``adapter.predictions`` table: one row per (generation, attempt).

Every function here is one statement, or a write followed by a read of the same row, so none
needs a transaction: all run in autocommit, one round trip per statement (a transaction
added BEGIN and COMMIT to each, on every prediction event).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.database import autocommit
from picture.common.telemetry import capture_trace_context
from picture.replicate_adapter.tables import predictions as t

CREATING = "creating"
CREATE_UNCERTAIN = "create_uncertain"


def request_hash(replicate_id: str, version: str | None, input: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of what is sent (model, version, input)."""
    canonical = json.dumps(
        {"model": replicate_id, "version": version, "input": input},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PredictionRow:
    generation_id: uuid.UUID
    attempt: int
    prediction_id: str | None
    request_hash: str
    model: str
    replicate_id: str
    status: str
    input: dict[str, Any]
    output: Any
    error: str | None
    predict_time_seconds: float | None
    cost_usd: float
    cancel_requested: bool
    terminal: bool
    created_at: datetime
    user_id: uuid.UUID | None = None
    completed_via: str | None = None
    trace_context: dict[str, str] | None = None
    create_sent_at: datetime | None = None
    create_settled_at: datetime | None = None

    @classmethod
    def from_mapping(cls, m: RowMapping) -> PredictionRow:
        return cls(
            generation_id=m["generation_id"],
            attempt=m["attempt"],
            prediction_id=m["prediction_id"],
            request_hash=m["request_hash"],
            model=m["model"],
            replicate_id=m["replicate_id"],
            status=m["status"],
            input=m["input"],
            output=m["output"],
            error=m["error"],
            predict_time_seconds=m["predict_time_seconds"],
            cost_usd=m["cost_usd"],
            cancel_requested=m["cancel_requested"],
            terminal=m["terminal"],
            created_at=m["created_at"],
            user_id=m["user_id"],
            completed_via=m["completed_via"],
            trace_context=m["trace_context"],
            create_sent_at=m["create_sent_at"],
            create_settled_at=m["create_settled_at"],
        )


def _key(generation_id: uuid.UUID, attempt: int) -> Any:
    return (t.c.generation_id == generation_id) & (t.c.attempt == attempt)


async def get(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int) -> PredictionRow | None:
    async with autocommit(engine).connect() as conn:
        row = (await conn.execute(select(t).where(_key(generation_id, attempt)))).mappings().first()
    return PredictionRow.from_mapping(row) if row else None


async def claim(
    engine: AsyncEngine,
    *,
    generation_id: uuid.UUID,
    attempt: int,
    model: str,
    replicate_id: str,
    input: dict[str, Any],
    hash: str,
    cost_usd: float,
    user_id: uuid.UUID | None = None,
) -> PredictionRow:
    """Insert the row (status creating) unless it exists; return the row as it is now."""
    async with autocommit(engine).connect() as conn:
        await conn.execute(
            insert(t)
            .values(
                generation_id=generation_id,
                attempt=attempt,
                user_id=user_id,
                request_hash=hash,
                model=model,
                replicate_id=replicate_id,
                status=CREATING,
                input=input,
                cost_usd=cost_usd,
                trace_context=capture_trace_context(),
            )
            .on_conflict_do_nothing(index_elements=["generation_id", "attempt"])
        )
        row = (await conn.execute(select(t).where(_key(generation_id, attempt)))).mappings().one()
    return PredictionRow.from_mapping(row)


async def lease(
    engine: AsyncEngine, generation_id: uuid.UUID, attempt: int, seconds: float
) -> PredictionRow | None:
    """Take the right to create the prediction for ``seconds``; None while another handler
    holds it (or when there is nothing left to create). Taking over an expired lease means
    the previous holder may have created it: the row becomes ``create_uncertain``."""
    async with autocommit(engine).connect() as conn:
        row = (
            (
                await conn.execute(
                    update(t)
                    .where(
                        _key(generation_id, attempt)
                        & t.c.prediction_id.is_(None)
                        & ~t.c.terminal
                        & (t.c.lease_until.is_(None) | (t.c.lease_until < func.now()))
                    )
                    .values(
                        lease_until=func.now() + text(f"interval '{float(seconds)} seconds'"),
                        status=case((t.c.lease_until.is_not(None), CREATE_UNCERTAIN), else_=t.c.status),
                        updated_at=func.now(),
                    )
                    .returning(t)
                )
            )
            .mappings()
            .first()
        )
    return PredictionRow.from_mapping(row) if row else None


async def create_sending(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int) -> None:
    """A create request is about to be sent: the attempt's window opens (or reopens)."""
    async with autocommit(engine).connect() as conn:
        await conn.execute(
            update(t)
            .where(_key(generation_id, attempt))
            .values(create_sent_at=func.coalesce(t.c.create_sent_at, func.now()), create_settled_at=None)
        )


async def create_settled(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int) -> None:
    """The create request ended (answered or failed): nothing of it can appear later."""
    async with autocommit(engine).connect() as conn:
        await conn.execute(update(t).where(_key(generation_id, attempt)).values(create_settled_at=func.now()))


async def open_creates(engine: AsyncEngine, row: PredictionRow) -> list[PredictionRow]:
    """Other attempts with the same request whose creates may have made a prediction they
    have not recorded (rivals of ``row`` for an unclaimed prediction)."""
    query = select(t).where(
        (t.c.request_hash == row.request_hash)
        & t.c.prediction_id.is_(None)
        & t.c.create_sent_at.is_not(None)
        & ~_key(row.generation_id, row.attempt)
    )
    async with autocommit(engine).connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [PredictionRow.from_mapping(r) for r in rows]


async def claimed(engine: AsyncEngine, prediction_ids: list[str]) -> set[str]:
    """Those of ``prediction_ids`` that an attempt already recorded as its own."""
    if not prediction_ids:
        return set()
    query = select(t.c.prediction_id).where(t.c.prediction_id.in_(prediction_ids))
    async with autocommit(engine).connect() as conn:
        return set((await conn.execute(query)).scalars().all())


async def release(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int) -> None:
    """Give the create lease back (the create failed; a redelivery will try again)."""
    async with autocommit(engine).connect() as conn:
        await conn.execute(update(t).where(_key(generation_id, attempt)).values(lease_until=None))


async def interrupted(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int) -> None:
    """Give the create lease back after the handler was interrupted (cancelled at a graceful
    stop, or an unexpected error) with no prediction recorded: if a create was sent, it may
    have reached Replicate and its answer is lost, so the next delivery reconciles
    (``create_uncertain``, the window closed now) before it may create again."""
    sent = t.c.prediction_id.is_(None) & ~t.c.terminal & t.c.create_sent_at.is_not(None)
    async with autocommit(engine).connect() as conn:
        await conn.execute(
            update(t)
            .where(_key(generation_id, attempt))
            .values(
                lease_until=None,
                status=case((sent, CREATE_UNCERTAIN), else_=t.c.status),
                create_settled_at=case(
                    (sent, func.coalesce(t.c.create_settled_at, func.now())), else_=t.c.create_settled_at
                ),
                updated_at=func.now(),
            )
        )


async def set_created(
    engine: AsyncEngine, generation_id: uuid.UUID, attempt: int, prediction_id: str, status: str
) -> PredictionRow:
    """Record the prediction Replicate created; returns the row (with ``cancel_requested``)."""
    async with autocommit(engine).connect() as conn:
        row = (
            (
                await conn.execute(
                    update(t)
                    .where(_key(generation_id, attempt))
                    .values(
                        prediction_id=prediction_id,
                        status=status[:32],
                        lease_until=None,
                        create_settled_at=func.coalesce(t.c.create_settled_at, func.now()),
                        updated_at=func.now(),
                    )
                    .returning(t)
                )
            )
            .mappings()
            .one()
        )
    return PredictionRow.from_mapping(row)


async def adopt(
    engine: AsyncEngine, generation_id: uuid.UUID, attempt: int, prediction_id: str, status: str
) -> PredictionRow | None:
    """Record ``prediction_id`` as the attempt's unless it has one (or finished); the row, or
    None when nothing changed."""
    async with autocommit(engine).connect() as conn:
        row = (
            (
                await conn.execute(
                    update(t)
                    .where(_key(generation_id, attempt) & t.c.prediction_id.is_(None) & ~t.c.terminal)
                    .values(prediction_id=prediction_id, status=status[:32], updated_at=func.now())
                    .returning(t)
                )
            )
            .mappings()
            .first()
        )
    return PredictionRow.from_mapping(row) if row else None


async def set_status(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int, status: str) -> None:
    """A non-terminal status change (e.g. starting -> processing, create_uncertain)."""
    async with autocommit(engine).connect() as conn:
        await conn.execute(
            update(t)
            .where(_key(generation_id, attempt) & ~t.c.terminal)
            .values(status=status[:32], updated_at=func.now())
        )


async def finish(
    engine: AsyncEngine,
    generation_id: uuid.UUID,
    attempt: int,
    *,
    status: str,
    output: Any = None,
    error: str | None = None,
    error_code: str | None = None,
    predict_time_seconds: float | None = None,
    completed_via: str | None = None,
) -> bool:
    """Mark the row terminal. True when this call made it terminal (first writer wins)."""
    async with autocommit(engine).connect() as conn:
        result = await conn.execute(
            update(t)
            .where(_key(generation_id, attempt) & ~t.c.terminal)
            .values(
                status=status[:32],
                terminal=True,
                lease_until=None,
                output=output,
                error=error,
                error_code=error_code,
                predict_time_seconds=predict_time_seconds,
                completed_via=completed_via,
                updated_at=func.now(),
                completed_at=func.now(),
            )
            .returning(t.c.id)
        )
        return result.first() is not None


async def request_cancel(engine: AsyncEngine, generation_id: uuid.UUID, attempt: int) -> PredictionRow:
    """Flag the row for cancellation; with no row yet, write a terminal canceled one so a
    predict command arriving later creates nothing."""
    async with autocommit(engine).connect() as conn:
        await conn.execute(
            insert(t)
            .values(
                generation_id=generation_id,
                attempt=attempt,
                request_hash="",
                model="",
                replicate_id="",
                status="canceled",
                input={},
                cost_usd=0.0,
                cancel_requested=True,
                terminal=True,
                completed_at=func.now(),
            )
            .on_conflict_do_update(
                index_elements=["generation_id", "attempt"],
                set_={"cancel_requested": True, "updated_at": func.now()},
            )
        )
        row = (await conn.execute(select(t).where(_key(generation_id, attempt)))).mappings().one()
    return PredictionRow.from_mapping(row)


async def active(engine: AsyncEngine) -> list[PredictionRow]:
    """Every prediction created at Replicate and not finished (resumed at start)."""
    async with autocommit(engine).connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(t).where(~t.c.terminal & t.c.prediction_id.is_not(None)).order_by(t.c.id)
                )
            )
            .mappings()
            .all()
        )
    return [PredictionRow.from_mapping(r) for r in rows]


def _lease_end(seconds: float) -> Any:
    return func.now() + text(f"interval '{float(seconds)} seconds'")


_FOLLOWED = ~t.c.terminal & t.c.prediction_id.is_not(None)
_UNOWNED = t.c.owned_until.is_(None) | (t.c.owned_until < func.now())


async def own(
    engine: AsyncEngine, generation_id: uuid.UUID, attempt: int, owner: str, seconds: float
) -> PredictionRow | None:
    """Make ``owner`` the poller of the attempt's prediction for ``seconds``, unless another
    replica's lease on it still holds (or it finished). The row when ``owner`` owns it."""
    async with autocommit(engine).connect() as conn:
        row = (
            (
                await conn.execute(
                    update(t)
                    .where(_key(generation_id, attempt) & _FOLLOWED & (_UNOWNED | (t.c.owner == owner)))
                    .values(owner=owner, owned_until=_lease_end(seconds))
                    .returning(t)
                )
            )
            .mappings()
            .first()
        )
    return PredictionRow.from_mapping(row) if row else None


async def renew(engine: AsyncEngine, owner: str, seconds: float) -> set[tuple[uuid.UUID, int]]:
    """Extend every lease ``owner`` holds on a prediction still followed, expired ones included
    (no other replica took them yet); the (generation, attempt) keys it still owns."""
    async with autocommit(engine).connect() as conn:
        rows = await conn.execute(
            update(t)
            .where(_FOLLOWED & (t.c.owner == owner))
            .values(owned_until=_lease_end(seconds))
            .returning(t.c.generation_id, t.c.attempt)
        )
        return {(r.generation_id, r.attempt) for r in rows}


async def take_over(engine: AsyncEngine, owner: str, seconds: float, limit: int) -> list[PredictionRow]:
    """Claim up to ``limit`` followed predictions nobody holds a live lease on (their replica
    died, stopped, or never took them), oldest first. Replicas claiming at once skip each
    other's rows (SKIP LOCKED), so each row gets one new owner."""
    free = (
        select(t.c.id)
        .where(_FOLLOWED & _UNOWNED)
        .order_by(t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    async with autocommit(engine).connect() as conn:
        rows = (
            (
                await conn.execute(
                    update(t)
                    .where(t.c.id.in_(free) & _FOLLOWED & _UNOWNED)
                    .values(owner=owner, owned_until=_lease_end(seconds))
                    .returning(t)
                )
            )
            .mappings()
            .all()
        )
    return sorted((PredictionRow.from_mapping(r) for r in rows), key=lambda r: r.created_at)


async def disown(engine: AsyncEngine, owner: str) -> int:
    """Give up every lease of ``owner`` at once (a graceful stop): the other replicas take the
    predictions over at their next heartbeat instead of after the lease."""
    async with autocommit(engine).connect() as conn:
        result = await conn.execute(
            update(t).where(_FOLLOWED & (t.c.owner == owner)).values(owned_until=None).returning(t.c.id)
        )
        return len(result.all())


async def by_prediction_id(engine: AsyncEngine, prediction_id: str) -> PredictionRow | None:
    async with autocommit(engine).connect() as conn:
        row = (await conn.execute(select(t).where(t.c.prediction_id == prediction_id))).mappings().first()
    return PredictionRow.from_mapping(row) if row else None


@dataclass(frozen=True)
class CostTotal:
    day: date
    model: str
    user_id: uuid.UUID | None
    predictions: int
    cost_usd: float


async def cost_totals(engine: AsyncEngine, *, days: int, user_id: uuid.UUID | None = None) -> list[CostTotal]:
    """Succeeded predictions and their cost per UTC day (of creation) and model over the last
    ``days`` days, today included; per user too when ``user_id`` is given (only theirs)."""
    day = func.date(func.timezone("UTC", t.c.created_at)).label("day")
    since = func.date(func.timezone("UTC", func.now())) - (days - 1)
    columns = [day, t.c.model]
    where = (t.c.status == "succeeded") & t.c.terminal & (day >= since)
    if user_id is not None:
        columns.append(t.c.user_id)
        where = where & (t.c.user_id == user_id)
    query = (
        select(*columns, func.count().label("predictions"), func.sum(t.c.cost_usd).label("cost_usd"))
        .where(where)
        .group_by(*columns)
        .order_by(day.desc(), t.c.model)
    )
    async with autocommit(engine).connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        CostTotal(
            day=r["day"],
            model=r["model"],
            user_id=r["user_id"] if user_id is not None else None,
            predictions=int(r["predictions"]),
            cost_usd=round(float(r["cost_usd"] or 0.0), 6),
        )
        for r in rows
    ]
