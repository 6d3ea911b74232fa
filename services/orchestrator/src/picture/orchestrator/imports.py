"""Finished generations (and the batches they belong to) of the old product, written by
``picture-import``.

An imported generation is written as it ended (completed, failed or cancelled), never queued
nor dispatched, with its own id, owner and times; its history says it was imported (and why
its status differs from the old row's, when it does). It is announced like any change
(``generation.updated`` through the outbox), so every reader (the gateway's read model) sees it.
Idempotent by id: a second import writes nothing and answers ``created`` False.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import null
from sqlalchemy.dialects.postgresql import insert

from picture.common import contracts as c
from picture.common.contracts import GenerationStatus
from picture.orchestrator.context import Context
from picture.orchestrator.lifecycle import record_performance
from picture.orchestrator.messages import update_message
from picture.orchestrator.outbox import enqueue_all
from picture.orchestrator.tables import batches, generations, status_history
from picture.orchestrator.views import HistoryEntry, generation_view

IMPORTED = "imported from the previous Picture backend"


def history_of(req: c.ImportGenerationRequest) -> list[HistoryEntry]:
    """Accepted when it was created, then its final status when it ended (with the reason)."""
    ended = req.completed_at or req.created_at
    reason = IMPORTED if req.reason == "imported" else f"{IMPORTED}: {req.reason}"
    return [
        HistoryEntry(GenerationStatus.PENDING.value, req.created_at, IMPORTED),
        HistoryEntry(req.status.value, ended, reason),
    ]


def row_values(req: c.ImportGenerationRequest, now: datetime) -> dict[str, Any]:
    """The generations row of an imported generation."""
    completed = req.status is GenerationStatus.COMPLETED
    if completed and (req.image_id is None or not req.stored_objects):
        raise ValueError("a completed generation is imported with its image")
    ended = req.completed_at or req.created_at
    return {
        "id": req.generation_id,
        "user_id": req.user_id,
        "status": req.status.value,
        "model": req.model.name,
        "model_spec": req.model.model_dump(mode="json"),
        "parameters": req.parameters.model_dump(mode="json"),
        "attempt": 1,
        "retry_count": req.retry_count,
        "priority": 0,
        "version": 2,
        "error_code": None if completed else "imported",
        "error_message": None if completed else req.error_message,
        "created_at": req.created_at,
        "started_at": None,
        "completed_at": ended,
        "updated_at": now,
        "available_at": now,
        "dispatched_at": ended,
        "image_id": req.image_id if completed else None,
        "stored_objects": [o.model_dump(mode="json") for o in req.stored_objects] if completed else null(),
        "output_urls": null(),
        "cost_usd": None,
        "request_hash": None,
        "trace_context": null(),
        "batch_id": req.batch_id,
        "batch_index": req.batch_index if req.batch_id is not None else None,
    }


async def import_generation(ctx: Context, req: c.ImportGenerationRequest) -> c.ImportReply:
    values = row_values(req, ctx.now())
    async with ctx.transaction() as conn:
        row = (
            await conn.execute(
                insert(generations)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(*generations.c)
            )
        ).first()
        if row is None:
            return c.ImportReply(created=False)
        history = history_of(req)
        await conn.execute(
            status_history.insert(),
            [
                {
                    "generation_id": row.id,
                    "from_status": before.to_status if before is not None else None,
                    "to_status": entry.to_status,
                    "reason": entry.reason,
                    "at": entry.at,
                }
                for before, entry in zip([None, *history[:-1]], history, strict=True)
            ],
        )
        await record_performance(conn, row)
        await enqueue_all(conn, [update_message(generation_view(row, history))])
    return c.ImportReply(created=True)


async def import_batch(ctx: Context, req: c.ImportBatchRequest) -> c.ImportReply:
    """The batch's row; its items come as imported generations carrying its id."""
    async with ctx.engine.begin() as conn:
        row = (
            await conn.execute(
                insert(batches)
                .values(
                    id=req.batch_id,
                    user_id=req.user_id,
                    name=req.name,
                    kind=req.kind,
                    model=req.model,
                    created_at=req.created_at,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(batches.c.id)
            )
        ).first()
    return c.ImportReply(created=row is not None)
