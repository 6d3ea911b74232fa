"""Pages of images: the owner's own gallery (filters) and explore (everyone's public images,
by recency or popularity, with full-text search of the prompts). Keyset pages, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.cursors import NEWEST_FIRST, after_cursor, encode_cursor
from picture.catalog.images import detail_select, details
from picture.catalog.tables import image_tags, images, tags
from picture.catalog.tags import normalize_tag
from picture.common import contracts as c

POPULAR_FIRST = (int, datetime, uuid.UUID)  # cursor of (popularity, created_at, id)


async def list_images(engine: AsyncEngine, req: c.ListImagesRequest) -> c.ImageListReply:
    query = detail_select().where(images.c.user_id == req.user_id)
    query = query.where(images.c.archived_at.is_not(None) if req.archived else images.c.archived_at.is_(None))
    if req.favorite is not None:
        query = query.where(images.c.is_favorite.is_(req.favorite))
    if req.model is not None:
        query = query.where(images.c.model == req.model)
    if req.created_after is not None:
        query = query.where(images.c.created_at >= req.created_after)
    if req.created_before is not None:
        query = query.where(images.c.created_at < req.created_before)
    if req.cursor is not None:
        query = query.where(after_cursor((images.c.created_at, images.c.id), req.cursor, NEWEST_FIRST))
    query = query.order_by(images.c.created_at.desc(), images.c.id.desc()).limit(req.limit + 1)
    async with engine.connect() as conn:
        if req.tags:
            names = {normalize_tag(name) for name in req.tags}
            tag_ids = (await conn.execute(select(tags.c.id).where(tags.c.name.in_(names)))).scalars().all()
            if len(tag_ids) < len(names):
                return c.ImageListReply(images=())  # an unknown tag: nothing carries every one
            # The owner's rows of these tags (ix_image_tags_owner): a few short index ranges.
            carrying = (
                select(image_tags.c.image_id)
                .where(image_tags.c.user_id == req.user_id, image_tags.c.tag_id.in_(tag_ids))
                .group_by(image_tags.c.image_id)
                .having(func.count() == len(tag_ids))
            )
            query = query.where(images.c.id.in_(carrying))
        rows = (await conn.execute(query)).all()
        page = await details(conn, rows[: req.limit])
    next_cursor = None
    if len(rows) > req.limit:
        last = page[-1]
        next_cursor = encode_cursor(last.created_at, last.id)
    return c.ImageListReply(images=page, next_cursor=next_cursor)


async def explore(engine: AsyncEngine, req: c.ExploreRequest) -> c.ImageListReply:
    popular = req.sort == "popular"
    search = req.q if req.q is not None and req.q.strip() else None

    def page_of(t: Any) -> list[ColumnElement[bool]]:
        """Public, non-archived, after the cursor, matching the search: on table (alias) ``t``."""
        where: list[ColumnElement[bool]] = [t.c.is_public, t.c.archived_at.is_(None)]
        if req.cursor is not None and popular:
            where.append(after_cursor((t.c.popularity, t.c.created_at, t.c.id), req.cursor, POPULAR_FIRST))
        elif req.cursor is not None:
            where.append(after_cursor((t.c.created_at, t.c.id), req.cursor, NEWEST_FIRST))
        if search is not None:
            where.append(t.c.search.op("@@")(func.websearch_to_tsquery("english", search)))
        return where

    def order_of(t: Any) -> list[Any]:
        keys = [t.c.created_at.desc(), t.c.id.desc()]
        return [t.c.popularity.desc(), *keys] if popular else keys

    if search is not None:
        # Find the page's ids first (an index-only walk of ix_images_explore_recent_search when
        # sorted by recency; the GIN index for rare words), then fetch those rows by key.
        hit = images.alias("hit")
        ids = select(hit.c.id).where(*page_of(hit)).order_by(*order_of(hit)).limit(req.limit + 1)
        query = detail_select().where(images.c.id.in_(ids)).order_by(*order_of(images))
    else:
        query = detail_select().where(*page_of(images)).order_by(*order_of(images)).limit(req.limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        page = await details(conn, rows[: req.limit])
    next_cursor = None
    if len(rows) > req.limit:
        last_row = rows[req.limit - 1]
        if popular:
            next_cursor = encode_cursor(last_row.popularity, last_row.created_at, last_row.id)
        else:
            next_cursor = encode_cursor(last_row.created_at, last_row.id)
    return c.ImageListReply(images=page, next_cursor=next_cursor)
