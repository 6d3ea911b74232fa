"""Model records on a real PostgreSQL: reads, the active list and its order, an administrator's
patch (defaults within the model's ranges, one default model, all or nothing).

Each test works on its own copies of a seeded record (unique names); the one test that moves
the default puts it back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import models
from picture.catalog.seed import load_seed
from picture.catalog.tables import models as model_rows
from picture.common import contracts as c
from picture.common.messaging import QueryFailed

NewModel = Callable[..., Awaitable[str]]


@pytest.fixture
def new_model(engine: AsyncEngine) -> NewModel:
    """Inserts a copy of the seeded flux-dev record under a new name (``changes`` on top)."""
    flux_dev = next(record for record in load_seed() if record["name"] == "flux-dev")

    async def add(**changes: object) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        async with engine.begin() as conn:
            await conn.execute(
                insert(model_rows).values({**flux_dev, "is_default": False, **changes, "name": name})
            )
        return name

    return add


@pytest.fixture
async def the_default(engine: AsyncEngine) -> AsyncIterator[str]:
    """The default model's name now; made the default again afterwards."""
    async with engine.connect() as conn:
        name = (await conn.execute(select(model_rows.c.name).where(model_rows.c.is_default))).scalar_one()
    yield name
    await models.update_model(engine, c.UpdateModelRequest(name=name, patch=c.ModelPatch(is_default=True)))


async def patch(engine: AsyncEngine, name: str, **fields: object) -> c.ModelSpec:
    reply = await models.update_model(
        engine, c.UpdateModelRequest(name=name, patch=c.ModelPatch.model_validate(fields))
    )
    return reply.model


async def spec(engine: AsyncEngine, name: str) -> c.ModelSpec:
    return (await models.get_model(engine, c.GetModelRequest(name=name))).model


async def test_a_model_is_read_as_its_spec(engine: AsyncEngine, new_model: NewModel) -> None:
    name = await new_model(description="", supported_aspect_ratios=[])
    model = await spec(engine, name)
    assert (model.name, model.replicate_id, model.default_steps, model.max_steps) == (
        name,
        "black-forest-labs/flux-dev",
        28,
        50,
    )
    assert (model.description, model.supported_aspect_ratios) == ("", ())
    with pytest.raises(QueryFailed) as unknown:
        await spec(engine, "no-such-model")
    assert (unknown.value.code, unknown.value.field) == (c.QueryErrorCode.NOT_FOUND, "model")


async def test_the_list_has_active_models_default_first_then_by_order(
    engine: AsyncEngine, new_model: NewModel
) -> None:
    late = await new_model(sort_order=10**6)
    early = await new_model(sort_order=-(10**6))
    hidden = await new_model(is_active=False)
    active = [m.name for m in (await models.list_models(engine, c.ListModelsRequest())).models]
    assert hidden not in active and late in active and early in active
    default = (await models.list_models(engine, c.ListModelsRequest())).models[0]
    assert default.is_default
    assert active[1] == early and active[-1] == late
    everything = [
        m.name for m in (await models.list_models(engine, c.ListModelsRequest(include_inactive=True))).models
    ]
    assert hidden in everything and set(active) < set(everything)


async def test_an_administrators_patch(engine: AsyncEngine, new_model: NewModel) -> None:
    name = await new_model()
    changed = await patch(
        engine, name, display_name="Dev, renamed", max_steps=40, is_active=False, default_width=512
    )
    assert (changed.display_name, changed.max_steps, changed.is_active, changed.default_width) == (
        "Dev, renamed",
        40,
        False,
        512,
    )
    assert await spec(engine, name) == changed
    with pytest.raises(QueryFailed) as unknown:
        await patch(engine, "no-such-model", display_name="x")
    assert (unknown.value.code, unknown.value.field) == (c.QueryErrorCode.NOT_FOUND, "name")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"default_width": 4096}, "default_width"),
        ({"default_height": 64}, "default_height"),
        ({"max_steps": 10}, "max_steps"),  # below the default 28
        ({"default_strength": 0.9, "strength_max": 0.5}, "default_strength"),
    ],
)
async def test_a_patch_leaving_a_default_outside_its_range_changes_nothing(
    engine: AsyncEngine, new_model: NewModel, fields: dict[str, object], field: str
) -> None:
    name = await new_model()
    before = await spec(engine, name)
    with pytest.raises(QueryFailed) as invalid:
        await patch(engine, name, display_name="half done", **fields)
    assert (invalid.value.code, invalid.value.field) == (c.QueryErrorCode.INVALID, field)
    assert await spec(engine, name) == before


async def test_one_default_model(engine: AsyncEngine, new_model: NewModel, the_default: str) -> None:
    first, second = await new_model(), await new_model()
    assert (await patch(engine, first, is_default=True)).is_default
    assert not (await spec(engine, the_default)).is_default
    # Refused: the default does not move.
    with pytest.raises(QueryFailed):
        await patch(engine, second, is_default=True, default_width=4096)
    assert (await spec(engine, first)).is_default and not (await spec(engine, second)).is_default
    await patch(engine, second, is_default=True)
    listed = (await models.list_models(engine, c.ListModelsRequest(include_inactive=True))).models
    assert [m.name for m in listed if m.is_default] == [second]
    assert listed[0].name == second
