"""Prompt templates: a user's own, and everyone's public ones; changed by their owner only.
A generation made from a template counts one use (once per generation)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.cursors import NEWEST_FIRST, after_cursor, encode_cursor
from picture.catalog.tables import prompt_templates as t
from picture.catalog.tables import template_uses
from picture.common import contracts as c
from picture.common.ids import uuid7
from picture.common.messaging import QueryFailed

log = logging.getLogger(__name__)


def template_view(row: Any) -> c.TemplateView:
    return c.TemplateView.model_validate(row, from_attributes=True)


def _usable_by(user_id: uuid.UUID) -> ColumnElement[bool]:
    """The user's own templates and public ones."""
    return or_(t.c.user_id == user_id, t.c.is_public)


def _template_id(req: c.TemplateRequest) -> uuid.UUID:
    if req.template_id is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "template_id is required", field="template_id")
    return req.template_id


def _found(row: Any) -> c.TemplateReply:
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "prompt template not found")
    return c.TemplateReply(template=template_view(row))


async def list_templates(engine: AsyncEngine, req: c.ListTemplatesRequest) -> c.TemplateListReply:
    scope = {
        "all": _usable_by(req.user_id),
        "own": t.c.user_id == req.user_id,
        "public": t.c.is_public,
    }[req.scope]
    query = select(t).where(scope)
    if req.category is not None:
        query = query.where(t.c.category == req.category)
    if req.cursor is not None:
        query = query.where(after_cursor((t.c.created_at, t.c.id), req.cursor, NEWEST_FIRST))
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(req.limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    page = tuple(template_view(row) for row in rows[: req.limit])
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > req.limit else None
    return c.TemplateListReply(templates=page, next_cursor=next_cursor)


async def create_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    f = req.fields
    if f.name is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "name is required", field="name")
    if f.prompt is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "prompt is required", field="prompt")
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                insert(t)
                .values(
                    id=uuid7(),
                    user_id=req.user_id,
                    name=f.name,
                    prompt=f.prompt,
                    negative_prompt=f.negative_prompt,
                    category=f.category,
                    is_public=bool(f.is_public),
                )
                .returning(t)
            )
        ).one()
    return c.TemplateReply(template=template_view(row))


async def get_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(t).where(t.c.id == _template_id(req), _usable_by(req.user_id)))
        ).first()
    return _found(row)


async def update_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    values: dict[str, Any] = req.fields.model_dump(exclude_none=True, exclude={"clear"})
    values.update(dict.fromkeys(req.fields.clear))
    own = and_(t.c.id == _template_id(req), t.c.user_id == req.user_id)
    async with engine.begin() as conn:
        row = (
            await conn.execute(update(t).where(own).values(**values, updated_at=func.now()).returning(t))
        ).first()
    return _found(row)


async def delete_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    own = and_(t.c.id == _template_id(req), t.c.user_id == req.user_id)
    async with engine.begin() as conn:
        row = (await conn.execute(delete(t).where(own).returning(t))).first()
    return _found(row)


async def template_used(engine: AsyncEngine, cmd: c.TemplateUsedCommand) -> None:
    """Count a use once per (template, generation); a template the user cannot see (private to
    someone else, or deleted since) is not counted."""
    async with engine.begin() as conn:
        usable = (
            await conn.execute(select(t.c.id).where(t.c.id == cmd.template_id, _usable_by(cmd.user_id)))
        ).first()
        if usable is None:
            log.info("template_used for an unknown or private template %s", cmd.template_id)
            return
        inserted = (
            await conn.execute(
                pg_insert(template_uses)
                .values(template_id=cmd.template_id, generation_id=cmd.generation_id, user_id=cmd.user_id)
                .on_conflict_do_nothing()
                .returning(template_uses.c.template_id)
            )
        ).first()
        if inserted is not None:
            await conn.execute(update(t).where(t.c.id == cmd.template_id).values(use_count=t.c.use_count + 1))
