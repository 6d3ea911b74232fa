"""Batches: several prompts (or one prompt with several seeds) accepted, followed, cancelled and
retried together. A batch's items are ordinary generations with ``batch_id``/``batch_index``;
retrying a failed item creates a new generation at the same index and marks the old one
``superseded`` (terminal states never change)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from picture.common import contracts as c
from picture.common.contracts import GenerationStatus
from picture.common.ids import uuid7
from picture.common.messaging import QueryFailed
from picture.orchestrator.context import Context
from picture.orchestrator.intake import NewGeneration, insert_generation, insert_generations
from picture.orchestrator.lifecycle import cancel_row
from picture.orchestrator.tables import batches, generations
from picture.orchestrator.views import decode_cursor, encode_cursor, generation_view

PROGRESS = {
    GenerationStatus.PENDING: 0.0,
    GenerationStatus.QUEUED: 0.0,
    GenerationStatus.PROCESSING: 0.4,
    GenerationStatus.DOWNLOADING: 0.8,
    GenerationStatus.COMPLETED: 1.0,
    GenerationStatus.FAILED: 1.0,
    GenerationStatus.CANCELLED: 1.0,
}


def batch_status(total: int, completed: int, failed: int, pending: int) -> c.BatchStatus:
    if completed + failed < total:
        return c.BatchStatus.PENDING if pending == total else c.BatchStatus.PROCESSING
    if failed == 0:
        return c.BatchStatus.COMPLETED
    return c.BatchStatus.FAILED if completed == 0 else c.BatchStatus.PARTIAL


def _view(batch: Any, items: list[Any]) -> c.BatchView:
    statuses = [GenerationStatus(i.status) for i in items]
    completed = statuses.count(GenerationStatus.COMPLETED)
    failed = statuses.count(GenerationStatus.FAILED) + statuses.count(GenerationStatus.CANCELLED)
    pending = statuses.count(GenerationStatus.PENDING) + statuses.count(GenerationStatus.QUEUED)
    processing = statuses.count(GenerationStatus.PROCESSING) + statuses.count(GenerationStatus.DOWNLOADING)
    views = []
    for item in items:
        status = GenerationStatus(item.status)
        generation = generation_view(item)
        views.append(
            c.BatchItemView(
                generation_id=item.id,
                index=item.batch_index,
                prompt=item.parameters["prompt"],
                seed=item.parameters.get("seed"),
                status=status,
                progress=PROGRESS[status],
                error_message=item.error_message,
                image=generation.image,
            )
        )
    return c.BatchView(
        id=batch.id,
        user_id=batch.user_id,
        name=batch.name,
        kind=batch.kind,
        model=batch.model,
        status=batch_status(len(items), completed, failed, pending),
        total=len(items),
        completed=completed,
        failed=failed,
        pending=pending,
        processing=processing,
        created_at=batch.created_at,
        items=tuple(views),
    )


async def _items(conn: AsyncConnection, batch_id: uuid.UUID, *, lock: bool = False) -> list[Any]:
    query = (
        select(generations)
        .where(generations.c.batch_id == batch_id, generations.c.superseded.is_(False))
        .order_by(generations.c.batch_index)
    )
    if lock:
        query = query.with_for_update()
    return list((await conn.execute(query)).all())


async def _batch(
    conn: AsyncConnection, batch_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False
) -> Any:
    query = select(batches).where(batches.c.id == batch_id, batches.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None or row.user_id != user_id:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "batch not found")
    return row


async def load_batch(conn: AsyncConnection, batch_id: uuid.UUID, user_id: uuid.UUID) -> c.BatchView:
    batch = await _batch(conn, batch_id, user_id)
    return _view(batch, await _items(conn, batch_id))


async def create_batch(ctx: Context, req: c.CreateBatchRequest) -> c.BatchReply:
    async with ctx.transaction() as conn:
        inserted = (
            await conn.execute(
                insert(batches)
                .values(
                    id=req.batch_id, user_id=req.user_id, name=req.name, kind=req.kind, model=req.model.name
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(batches.c.id)
            )
        ).first()
        if inserted is not None:
            created = await insert_generations(
                ctx,
                conn,
                [
                    NewGeneration(
                        item.generation_id,
                        req.user_id,
                        req.model,
                        item.parameters,
                        req.reuse,
                        req.priority,
                        batch_id=req.batch_id,
                        batch_index=index,
                    )
                    for index, item in enumerate(req.items)
                ],
            )
            if not all(created):
                raise QueryFailed(c.QueryErrorCode.CONFLICT, "generation id already used")
        view = await load_batch(conn, req.batch_id, req.user_id)  # the same id again: theirs only
    ctx.notify()
    return c.BatchReply(batch=view)


async def get_batch(ctx: Context, req: c.BatchRequest) -> c.BatchReply:
    async with ctx.engine.connect() as conn:
        return c.BatchReply(batch=await load_batch(conn, req.batch_id, req.user_id))


async def list_batches(ctx: Context, req: c.ListBatchesRequest) -> c.BatchListReply:
    query = select(batches).where(batches.c.user_id == req.user_id, batches.c.deleted_at.is_(None))
    if req.cursor:
        at, ident = decode_cursor(req.cursor)
        query = query.where(
            or_(batches.c.created_at < at, and_(batches.c.created_at == at, batches.c.id < ident))
        )
    query = query.order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(req.limit + 1)
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        page = rows[: req.limit]
        views = [_view(b, await _items(conn, b.id)) for b in page]
    cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > req.limit else None
    return c.BatchListReply(batches=tuple(views), next_cursor=cursor)


async def _cancel_items(ctx: Context, conn: AsyncConnection, batch_id: uuid.UUID) -> None:
    for item in await _items(conn, batch_id, lock=True):
        await cancel_row(ctx, conn, item)


async def cancel_batch(ctx: Context, req: c.BatchRequest) -> c.BatchReply:
    """Cancel every item not finished yet (waiting or running); finished ones stay."""
    async with ctx.transaction() as conn:
        await _batch(conn, req.batch_id, req.user_id, lock=True)
        await _cancel_items(ctx, conn, req.batch_id)
        view = await load_batch(conn, req.batch_id, req.user_id)
    ctx.notify()
    return c.BatchReply(batch=view)


async def retry_failed(ctx: Context, req: c.BatchRequest) -> c.BatchReply:
    """A new generation for each failed or cancelled item, at the same index; its id is the
    next of ``req.new_generation_ids`` (charged by the gateway), or a new one."""
    new_ids = iter(req.new_generation_ids)
    async with ctx.transaction() as conn:
        await _batch(conn, req.batch_id, req.user_id, lock=True)
        for item in await _items(conn, req.batch_id, lock=True):
            if item.status not in (GenerationStatus.FAILED.value, GenerationStatus.CANCELLED.value):
                continue
            await conn.execute(update(generations).where(generations.c.id == item.id).values(superseded=True))
            await insert_generation(
                ctx,
                conn,
                NewGeneration(
                    next(new_ids, None) or uuid7(),
                    item.user_id,
                    c.ModelSpec.model_validate(item.model_spec),
                    c.GenerationParameters.model_validate(item.parameters),
                    True,
                    item.priority,
                    batch_id=req.batch_id,
                    batch_index=item.batch_index,
                ),
            )
        view = await load_batch(conn, req.batch_id, req.user_id)
    ctx.notify()
    return c.BatchReply(batch=view)


async def delete_batch(ctx: Context, req: c.BatchRequest) -> c.BatchReply:
    """Cancel what is not finished and hide the batch (its generations and images remain)."""
    async with ctx.transaction() as conn:
        await _batch(conn, req.batch_id, req.user_id, lock=True)
        await _cancel_items(ctx, conn, req.batch_id)
        view = await load_batch(conn, req.batch_id, req.user_id)
        await conn.execute(update(batches).where(batches.c.id == req.batch_id).values(deleted_at=ctx.now()))
    ctx.notify()
    return c.BatchReply(batch=view)
