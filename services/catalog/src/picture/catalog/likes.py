"""Likes: a user likes an image they can see, once; the image keeps the count."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.images import visible_to
from picture.catalog.tables import image_likes, images
from picture.common import contracts as c
from picture.common.messaging import QueryFailed


async def like(engine: AsyncEngine, req: c.LikeRequest) -> c.LikeReply:
    """Idempotent like/unlike; the count changes in the same transaction as the like row, and
    only when a row was really inserted or deleted (ON CONFLICT serialises concurrent likes)."""
    async with engine.begin() as conn:
        visible = (
            await conn.execute(
                select(images.c.id).where(images.c.id == req.image_id, visible_to(req.user_id))
            )
        ).first()
        if visible is None:
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")
        if req.like:
            changed = (
                await conn.execute(
                    pg_insert(image_likes)
                    .values(image_id=req.image_id, user_id=req.user_id)
                    .on_conflict_do_nothing()
                    .returning(image_likes.c.image_id)
                )
            ).first()
            delta = 1
        else:
            changed = (
                await conn.execute(
                    delete(image_likes)
                    .where(image_likes.c.image_id == req.image_id, image_likes.c.user_id == req.user_id)
                    .returning(image_likes.c.image_id)
                )
            ).first()
            delta = -1
        if changed is not None:
            count = (
                await conn.execute(
                    update(images)
                    .where(images.c.id == req.image_id)
                    .values(like_count=images.c.like_count + delta)
                    .returning(images.c.like_count)
                )
            ).scalar_one()
        else:
            count = (
                await conn.execute(select(images.c.like_count).where(images.c.id == req.image_id))
            ).scalar_one()
    return c.LikeReply(image_id=req.image_id, liked=req.like, like_count=count)
