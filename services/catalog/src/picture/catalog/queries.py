"""Read side: the catalog's answers to other services' queries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.tables import images, models
from picture.common.contracts import ImageView, ModelSpec, QueryErrorCode
from picture.common.messaging import QueryFailed

_MODEL_FIELDS = tuple(ModelSpec.model_fields)


def model_from_row(row: Any) -> ModelSpec:
    data = {name: getattr(row, name) for name in _MODEL_FIELDS}
    data["supported_aspect_ratios"] = tuple(data["supported_aspect_ratios"] or ())
    data["description"] = data["description"] or ""
    return ModelSpec.model_validate(data)


async def get_model(engine: AsyncEngine, name: str) -> ModelSpec:
    async with engine.connect() as conn:
        row = (await conn.execute(select(models).where(models.c.name == name))).first()
    if row is None:
        raise QueryFailed(QueryErrorCode.NOT_FOUND, f"unknown model {name!r}", field="model")
    return model_from_row(row)


async def list_models(engine: AsyncEngine, include_inactive: bool) -> tuple[ModelSpec, ...]:
    query = select(models).order_by(models.c.is_default.desc(), models.c.sort_order, models.c.name)
    if not include_inactive:
        query = query.where(models.c.is_active)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return tuple(model_from_row(row) for row in rows)


async def get_image(engine: AsyncEngine, image_id: uuid.UUID, viewer_id: uuid.UUID | None) -> ImageView:
    """An image the viewer may see: their own, or a public one. Anything else is not found
    (never "forbidden": that would confirm the id exists)."""
    visible = (
        images.c.is_public if viewer_id is None else or_(images.c.user_id == viewer_id, images.c.is_public)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(select(images).where(images.c.id == image_id, visible))).first()
    if row is None:
        raise QueryFailed(QueryErrorCode.NOT_FOUND, "image not found")
    return ImageView(
        id=row.id,
        generation_id=row.generation_id,
        user_id=row.user_id,
        width=row.width,
        height=row.height,
        format=row.format,
        file_size=row.file_size,
        content_key=row.content_key,
        thumbnail_key=row.thumbnail_key,
        is_public=row.is_public,
        created_at=row.created_at,
    )
