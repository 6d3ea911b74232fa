"""Tags: one shared set of names (lowercased, spaces collapsed), put on images by their owners.

Anyone may create a tag (creating an existing name returns it unchanged); putting a tag on an
image creates the name when new. Deleting a tag (an administrator's route) takes it off every
image.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.catalog.images import load_detail, require_own
from picture.catalog.tables import image_tags, tags
from picture.common import contracts as c
from picture.common.messaging import QueryFailed

DEFAULT_TAG_COLOR = "#6b7280"


def normalize_tag(name: str) -> str:
    value = " ".join(name.split()).lower()
    if not value:
        raise QueryFailed(c.QueryErrorCode.INVALID, "tag name must not be blank", field="name")
    return value


def tag_view(row: Any) -> c.TagView:
    return c.TagView.model_validate(row, from_attributes=True)


async def _ensure_tag(conn: AsyncConnection, name: str, color: str) -> Any:
    """The tag's row, inserted when new (concurrent inserts of one name make one row)."""
    await conn.execute(
        pg_insert(tags).values(name=name, color=color).on_conflict_do_nothing(index_elements=["name"])
    )
    return (await conn.execute(select(tags).where(tags.c.name == name))).one()


async def list_tags(engine: AsyncEngine, req: c.ListTagsRequest) -> c.TagListReply:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(tags).order_by(tags.c.name))).all()
    return c.TagListReply(tags=tuple(tag_view(row) for row in rows))


async def create_tag(engine: AsyncEngine, req: c.TagRequest) -> c.TagReply:
    async with engine.begin() as conn:
        row = await _ensure_tag(conn, normalize_tag(req.name), req.color.lower())
    return c.TagReply(tag=tag_view(row))


async def delete_tag(engine: AsyncEngine, req: c.TagRequest) -> c.TagReply:
    async with engine.begin() as conn:
        row = (
            await conn.execute(delete(tags).where(tags.c.name == normalize_tag(req.name)).returning(tags))
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "tag not found", field="name")
    return c.TagReply(tag=tag_view(row))


async def image_tag(engine: AsyncEngine, req: c.ImageTagRequest) -> c.ImageDetailReply:
    """Put the tag on the owner's image (``add``) or take it off; idempotent both ways."""
    name = normalize_tag(req.name)
    async with engine.begin() as conn:
        await require_own(conn, req.image_id, req.user_id)
        if req.add:
            tag = await _ensure_tag(conn, name, DEFAULT_TAG_COLOR)
            await conn.execute(
                pg_insert(image_tags)
                .values(image_id=req.image_id, tag_id=tag.id, user_id=req.user_id)
                .on_conflict_do_nothing()
            )
        else:
            await conn.execute(
                delete(image_tags).where(
                    image_tags.c.image_id == req.image_id,
                    image_tags.c.tag_id == select(tags.c.id).where(tags.c.name == name).scalar_subquery(),
                )
            )
        return c.ImageDetailReply(image=await load_detail(conn, req.image_id, req.user_id))
