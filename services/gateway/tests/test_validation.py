"""Generation requests against the model record: defaults applied, limits refused by field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from picture.common.contracts import ModelSpec
from picture.gateway.errors import InvalidField
from picture.gateway.schemas import GenerationCreate
from picture.gateway.validation import apply_model

SCHNELL = ModelSpec(
    name="flux-schnell",
    display_name="FLUX schnell",
    replicate_id="black-forest-labs/flux-schnell",
    default_width=1024,
    default_height=1024,
    min_width=256,
    max_width=1536,
    min_height=256,
    max_height=1536,
    default_steps=4,
    max_steps=4,
    default_guidance_scale=3.5,
    supports_negative_prompt=False,
    supports_seed=True,
)
SDXL = SCHNELL.model_copy(update={"name": "sdxl", "supports_negative_prompt": True, "max_steps": 100})


def body(**fields: object) -> GenerationCreate:
    return GenerationCreate.model_validate({"model": "flux-schnell", "prompt": "a cat", **fields})


def test_model_defaults_fill_what_the_user_left_out() -> None:
    params = apply_model(SCHNELL, body())
    assert (params.width, params.height, params.steps, params.guidance_scale) == (1024, 1024, 4, 3.5)
    assert params.seed is None and params.negative_prompt is None


@pytest.mark.parametrize(("field", "value"), [("seed", 0), ("guidance_scale", 0.0)])
def test_zero_is_a_value_not_a_missing_one(field: str, value: float) -> None:
    params = apply_model(SCHNELL, body(**{field: value}))
    assert getattr(params, field) == value


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        (SCHNELL, {"width": 2048}, "width"),
        (SCHNELL, {"width": 255}, "width"),
        (SCHNELL, {"height": 1537}, "height"),
        (SCHNELL, {"steps": 5}, "steps"),
        (SCHNELL, {"negative_prompt": "blurry"}, "negative_prompt"),
        (SCHNELL.model_copy(update={"supports_seed": False}), {"seed": 3}, "seed"),
        (SCHNELL.model_copy(update={"is_active": False}), {}, "model"),
        (SCHNELL.model_copy(update={"supports_steps": False}), {"steps": 2}, "steps"),
        (SCHNELL.model_copy(update={"supports_guidance": False}), {"guidance_scale": 0.0}, "guidance_scale"),
        (SDXL.model_copy(update={"guidance_min": 1.0}), {"guidance_scale": 0.5}, "guidance_scale"),
        (SDXL.model_copy(update={"guidance_max": 10.0}), {"guidance_scale": 10.5}, "guidance_scale"),
        (SCHNELL.model_copy(update={"max_seed": 2**31 - 1}), {"seed": 2**31}, "seed"),
    ],
)
def test_limits_of_the_model_are_refused_by_field(
    model: ModelSpec, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidField) as raised:
        apply_model(model, body(**fields))
    assert raised.value.field == field
    assert raised.value.status == 422


def test_defaults_are_filled_only_for_what_the_model_takes() -> None:
    """A default the model cannot take is never sent (it made the adapter refuse a plain request)."""
    model = SCHNELL.model_copy(update={"supports_steps": False, "supports_guidance": False})
    params = apply_model(model, body())
    assert (params.steps, params.guidance_scale) == (None, None)


def test_bounds_themselves_are_accepted() -> None:
    model = SDXL.model_copy(update={"guidance_min": 1.0, "guidance_max": 50.0, "max_seed": 2**31 - 1})
    for guidance, seed in ((1.0, 0), (50.0, 2**31 - 1)):
        params = apply_model(model, body(model="sdxl", guidance_scale=guidance, seed=seed, steps=100))
        assert (params.guidance_scale, params.seed, params.steps) == (guidance, seed, 100)


def test_negative_prompt_passes_where_supported() -> None:
    assert apply_model(SDXL, body(model="sdxl", negative_prompt=" blurry ")).negative_prompt == "blurry"


@pytest.mark.parametrize(
    "fields",
    [{"prompt": "  "}, {"prompt": ""}, {"user_id": "x"}, {"width": 0}, {"seed": 2**32}, {"model": "A B"}],
)
def test_request_shape_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        body(**fields)


FLUX_DEV = SCHNELL.model_copy(
    update={"name": "flux-dev", "supports_img2img": True, "max_steps": 50, "default_strength": 0.8}
)
SOURCE = "0193a1b2-0000-7000-8000-000000000001"


def test_img2img_takes_the_models_default_strength() -> None:
    params = apply_model(FLUX_DEV, body(model="flux-dev", source_image_id=SOURCE))
    assert params.strength == 0.8


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        (SCHNELL, {"source_image_id": SOURCE}, "source_image_id"),
        (FLUX_DEV, {"strength": 0.5}, "strength"),
        (
            FLUX_DEV.model_copy(update={"supports_strength": False}),
            {"source_image_id": SOURCE, "strength": 0.5},
            "strength",
        ),
        (
            FLUX_DEV.model_copy(update={"strength_min": 0.2}),
            {"source_image_id": SOURCE, "strength": 0.1},
            "strength",
        ),
    ],
)
def test_img2img_refusals_name_the_field(model: ModelSpec, fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        apply_model(model, body(model=model.name, **fields))
    assert raised.value.field == field


def test_text_to_image_carries_no_strength() -> None:
    assert apply_model(FLUX_DEV, body(model="flux-dev")).strength is None
