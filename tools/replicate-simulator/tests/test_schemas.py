"""The recorded input schemas: each says where and when it was read, and inputs are checked
against them the way Replicate checks them (the answers through the official client are in
test_official_client.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from picture.replicate_simulator.schemas import ModelSchema, schema_for, schemas, validate

SCHNELL = "black-forest-labs/flux-schnell"


def test_fourteen_models_are_recorded_with_their_sources() -> None:
    assert len(schemas()) == 14
    for schema in schemas().values():
        assert schema.read, schema.model
        for source in schema.read:
            date.fromisoformat(source["date"])
            assert source["what"]
        assert schema.output_shape in ("list", "single")


@pytest.mark.parametrize("schema", list(schemas().values()), ids=lambda s: s.model)
def test_defaults_lie_within_their_own_bounds(schema: ModelSchema) -> None:
    for name, spec in schema.properties.items():
        default = spec.get("default")
        if default is not None:
            assert validate(schema, {"prompt": "p", name: default}) == [], name


@pytest.mark.parametrize(
    ("model", "given", "expected"),
    [
        (SCHNELL, {}, [("required", "input.prompt", "prompt is required")]),
        (
            SCHNELL,
            {"prompt": "p", "num_inference_steps": 5},
            [("number_lte", "input.num_inference_steps", "Must be less than or equal to 4")],
        ),
        (
            "black-forest-labs/flux-1.1-pro",
            {"prompt": "p", "width": 255},
            [("number_gte", "input.width", "Must be greater than or equal to 256")],
        ),
        (
            SCHNELL,
            {"prompt": "p", "num_outputs": "2"},
            [("invalid_type", "input.num_outputs", "Invalid type. Expected: integer, given: string")],
        ),
        (
            SCHNELL,
            {"prompt": "p", "go_fast": 1},
            [("invalid_type", "input.go_fast", "Invalid type. Expected: boolean, given: integer")],
        ),
        (
            "ideogram-ai/ideogram-v3-turbo",
            {"prompt": "p", "magic_prompt_option": "auto"},
            [
                (
                    "enum",
                    "input.magic_prompt_option",
                    'magic_prompt_option must be one of the following: "Auto", "On", "Off"',
                )
            ],
        ),
        (
            "stability-ai/stable-diffusion-3.5-large",
            {"prompt": "p", "cfg": 0.5, "aspect_ratio": "4:3"},
            [
                ("number_gte", "input.cfg", "Must be greater than or equal to 1"),
                (
                    "enum",
                    "input.aspect_ratio",
                    'aspect_ratio must be one of the following: "1:1", "16:9", "21:9", "3:2", "2:3",'
                    ' "4:5", "5:4", "9:16", "9:21"',
                ),
            ],
        ),
    ],
)
def test_invalid_inputs_are_listed_by_field(
    model: str, given: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    schema = schema_for(model)
    assert schema is not None
    assert [(e.type, e.field, e.description) for e in validate(schema, given)] == expected


def test_unknown_fields_are_ignored_not_refused() -> None:
    schema = schema_for(SCHNELL)
    assert schema is not None
    given = {"prompt": "p", "guidance": 3.5, "width": 1344}
    assert validate(schema, given) == []
    assert schema.unknown_fields(given) == ["guidance", "width"]


def test_an_integral_number_is_an_integer_and_a_bool_is_not_a_number() -> None:
    schema = schema_for("stability-ai/sdxl")
    assert schema is not None
    assert validate(schema, {"num_inference_steps": 30.0, "guidance_scale": 7}) == []
    assert [e.type for e in validate(schema, {"guidance_scale": True})] == ["invalid_type"]
