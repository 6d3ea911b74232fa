"""Model records: read by the gateway (to validate a generation) and changed by administrators.

The records are seeded by the migrations (:mod:`picture.catalog.seed`); an administrator's
patch keeps each default within the model's own range, and one model at most is the default.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.tables import models
from picture.common import contracts as c
from picture.common.messaging import QueryFailed

_MODEL_FIELDS = tuple(c.ModelSpec.model_fields)


def model_spec(row: Any) -> c.ModelSpec:
    data = {name: getattr(row, name) for name in _MODEL_FIELDS}
    data["supported_aspect_ratios"] = tuple(data["supported_aspect_ratios"] or ())
    data["description"] = data["description"] or ""
    return c.ModelSpec.model_validate(data)


async def get_model(engine: AsyncEngine, req: c.GetModelRequest) -> c.ModelReply:
    async with engine.connect() as conn:
        row = (await conn.execute(select(models).where(models.c.name == req.name))).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, f"unknown model {req.name!r}", field="model")
    return c.ModelReply(model=model_spec(row))


async def list_models(engine: AsyncEngine, req: c.ListModelsRequest) -> c.ModelListReply:
    """The default model first, then by sort order and name; active ones unless asked."""
    query = select(models).order_by(models.c.is_default.desc(), models.c.sort_order, models.c.name)
    if not req.include_inactive:
        query = query.where(models.c.is_active)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return c.ModelListReply(models=tuple(model_spec(row) for row in rows))


async def update_model(engine: AsyncEngine, req: c.UpdateModelRequest) -> c.ModelReply:
    values = req.patch.model_dump(exclude_none=True)
    try:
        return await _update_model(engine, req.name, values)
    except IntegrityError as exc:
        if "strength_range" in str(exc.orig):
            raise QueryFailed(
                c.QueryErrorCode.INVALID,
                "strengths must satisfy strength_min <= default_strength <= strength_max",
                field="default_strength",
            ) from exc
        raise


async def _update_model(engine: AsyncEngine, name: str, values: dict[str, Any]) -> c.ModelReply:
    async with engine.begin() as conn:
        if values.get("is_default"):
            await conn.execute(
                update(models).where(models.c.name != name, models.c.is_default).values(is_default=False)
            )
        row = (
            await conn.execute(
                update(models)
                .where(models.c.name == name)
                .values(**values, updated_at=func.now())
                .returning(models)
            )
        ).first()
        if row is None:
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, f"unknown model {name!r}", field="name")
        # Raised inside the transaction: a patch that leaves a default outside its range is
        # rolled back whole.
        if not row.min_width <= row.default_width <= row.max_width:
            raise QueryFailed(
                c.QueryErrorCode.INVALID, "default_width outside the model's range", field="default_width"
            )
        if not row.min_height <= row.default_height <= row.max_height:
            raise QueryFailed(
                c.QueryErrorCode.INVALID, "default_height outside the model's range", field="default_height"
            )
        if row.default_steps is not None and row.default_steps > row.max_steps:
            raise QueryFailed(
                c.QueryErrorCode.INVALID, "max_steps below the default steps", field="max_steps"
            )
    return c.ModelReply(model=model_spec(row))
