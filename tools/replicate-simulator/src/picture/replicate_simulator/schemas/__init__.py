"""Each simulated model's real Replicate input schema, as data (one JSON file per model here),
and the validation Replicate applies to a prediction's ``input`` against it.

A file records where and when its schema was read (``read``: url, date, what) and what could
not be confirmed (``notes``; a property's ``source``): such a property is checked by type only.
Replicate's answer to an invalid input is a 422 problem with ``detail`` listing the errors
("- input.width: Must be greater than or equal to 256") and ``invalid_fields``; fields the
schema does not know are ignored silently (they stay in the prediction's ``input``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

__all__ = ["InvalidField", "ModelSchema", "model_of_version", "schema_for", "schemas", "validate"]

OutputShape = Literal["list", "single"]
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True, slots=True)
class InvalidField:
    """One validation error, as Replicate lists it in ``invalid_fields``."""

    type: str
    field: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "field": self.field, "description": self.description}


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """The input schema of one model and the shape of its output."""

    model: str
    properties: dict[str, dict[str, Any]]
    required: tuple[str, ...]
    output_shape: OutputShape
    output_format: str
    version: str | None = None
    read: tuple[dict[str, Any], ...] = field(default=())

    def default(self, name: str) -> Any:
        return self.properties.get(name, {}).get("default")

    def unknown_fields(self, inp: dict[str, Any]) -> list[str]:
        """Fields Replicate would ignore (not in the schema)."""
        return sorted(k for k in inp if k not in self.properties)


def _load(text: str) -> ModelSchema:
    data = json.loads(text)
    output = data["output"]
    return ModelSchema(
        model=data["model"],
        properties=data["properties"],
        required=tuple(data.get("required", ())),
        output_shape=output["shape"],
        output_format=output["format"],
        version=data.get("version"),
        read=tuple(data.get("read", ())),
    )


@cache
def schemas() -> dict[str, ModelSchema]:
    """Every recorded schema by ``owner/name``."""
    found = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".json"):
            schema = _load(entry.read_text(encoding="utf-8"))
            found[schema.model] = schema
    return found


def schema_for(model: str) -> ModelSchema | None:
    """The recorded schema of ``model`` (``owner/name``), or None for a model without one."""
    return schemas().get(model)


def model_of_version(version: str) -> str | None:
    """The ``owner/name`` whose recorded schema is of ``version`` (a bare version id)."""
    return next((s.model for s in schemas().values() if s.version == version), None)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected not in ("boolean",):
        return False
    if expected == "integer" and isinstance(value, float):
        return value.is_integer() and math.isfinite(value)
    return isinstance(value, _TYPES[expected])


def _check(name: str, spec: dict[str, Any], value: Any) -> InvalidField | None:
    where = f"input.{name}"
    expected = spec.get("type")
    if expected is not None and not _has_type(value, expected):
        return InvalidField(
            "invalid_type", where, f"Invalid type. Expected: {expected}, given: {_type_name(value)}"
        )
    if "enum" in spec and value not in spec["enum"]:
        allowed = ", ".join(json.dumps(v) for v in spec["enum"])
        return InvalidField("enum", where, f"{name} must be one of the following: {allowed}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in spec and value < spec["minimum"]:
            return InvalidField(
                "number_gte", where, f"Must be greater than or equal to {_number(spec['minimum'])}"
            )
        if "maximum" in spec and value > spec["maximum"]:
            return InvalidField(
                "number_lte", where, f"Must be less than or equal to {_number(spec['maximum'])}"
            )
    if isinstance(value, list) and "maxItems" in spec and len(value) > spec["maxItems"]:
        return InvalidField("array_max_items", where, f"Array must have at most {spec['maxItems']} items")
    return None


def validate(schema: ModelSchema, inp: dict[str, Any]) -> list[InvalidField]:
    """Replicate's checks of ``inp``: required fields, then type, enum and range of each known
    field. Unknown fields are not errors."""
    errors = [
        InvalidField("required", f"input.{name}", f"{name} is required")
        for name in schema.required
        if name not in inp
    ]
    for name, value in inp.items():
        spec = schema.properties.get(name)
        if spec is not None and (error := _check(name, spec, value)) is not None:
            errors.append(error)
    return errors
