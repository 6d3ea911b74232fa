"""What the API takes in. Every text (body fields, query, path and header parameters, on
every route) is declared StorableText: PostgreSQL cannot store NUL or unpaired surrogates, and
a field that lets them through ends in a failed statement instead of a 422 naming it. The
routes with their own body caps are real routes."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

import pytest
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from picture.common.text import Storable, StorableText, check_storable
from picture.gateway.app import REPLICATE_WEBHOOK_PATH, UPLOADS_PATH, create_app
from picture.gateway.settings import GatewaySettings


def _guarded(metadata: tuple[Any, ...]) -> bool:
    """The storable check is there, and last: constraints after it would lose their own
    messages ("at most 5 items") and their JSON schema."""
    return bool(metadata) and isinstance(metadata[-1], AfterValidator) and metadata[-1].func is check_storable


def unguarded_text(annotation: Any, metadata: tuple[Any, ...] = (), path: str = "") -> list[str]:
    """The paths of every ``str`` inside ``annotation`` not checked by Storable (last)."""
    if annotation is str:
        return [] if _guarded(metadata) else [path or "(value)"]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return unguarded_text(base, (*extra, *metadata), path)  # outer metadata applies after
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found: list[str] = []
        for name, field in annotation.model_fields.items():
            found += unguarded_text(
                field.annotation, tuple(field.metadata), f"{path}.{name}" if path else name
            )
        return found
    if origin in (typing.Union, types.UnionType):  # Optional: the metadata is the text's
        return [p for arg in typing.get_args(annotation) for p in unguarded_text(arg, metadata, path)]
    if origin in (list, tuple, set, frozenset, dict):
        return [p for arg in typing.get_args(annotation) for p in unguarded_text(arg, (), path)]
    return []


def _api_routes(routes: typing.Iterable[Any]) -> typing.Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif getattr(route, "original_router", None) is not None:  # an included router
            yield from _api_routes(route.original_router.routes)


def _inputs() -> list[tuple[str, str, Any, tuple[Any, ...]]]:
    found = []
    for route in _api_routes(APP.routes):
        where = f"{sorted(route.methods)[0]} {route.path}"
        dependant = route.dependant
        stack = [dependant]
        while stack:
            current = stack.pop()
            stack.extend(current.dependencies)
            for kind, params in (
                ("path", current.path_params),
                ("query", current.query_params),
                ("header", current.header_params),
                ("body", current.body_params),
            ):
                for param in params:
                    info: FieldInfo = param.field_info
                    found.append((where, f"{kind}.{param.name}", info.annotation, tuple(info.metadata)))
    return found


APP = create_app(GatewaySettings(jwt_secret=SecretStr("x" * 40)))
INPUTS = _inputs()


def test_the_paths_with_their_own_body_cap_or_no_token_are_routes() -> None:
    posts = {route.path for route in _api_routes(APP.routes) if "POST" in route.methods}
    assert {UPLOADS_PATH, REPLICATE_WEBHOOK_PATH} <= posts


def test_the_routes_take_text_at_all() -> None:
    names = {name for _, name, _, _ in INPUTS}
    assert {"body.body", "query.q", "query.cursor", "header.idempotency_key", "path.name"} <= names


@pytest.mark.parametrize(
    ("route", "name", "annotation", "metadata"), INPUTS, ids=[f"{r} {n}" for r, n, _, _ in INPUTS]
)
def test_every_text_input_is_storable_text(
    route: str, name: str, annotation: Any, metadata: tuple[Any, ...]
) -> None:
    assert unguarded_text(annotation, metadata) == []


def test_the_guard_sees_plain_str_and_constraints_after_the_check() -> None:
    class Nested(BaseModel):
        tags: list[str]
        fine: list[Annotated[str, Field(max_length=5), Storable]]

    class Body(BaseModel):
        title: str | None
        nested: Nested
        late: StorableText | None = Field(default=None, max_length=5)  # applied after the check
        also_fine: StorableText = Field(max_length=5)
        checked: Annotated[str, Field(max_length=5), Storable] | None = None

    assert unguarded_text(Body) == ["title", "nested.tags", "late"]


def test_constraints_keep_their_own_messages() -> None:
    class Body(BaseModel):
        title: Annotated[str, Field(max_length=5), Storable] | None = None

    with pytest.raises(ValidationError, match="at most 5 characters"):
        Body(title="x" * 6)
    with pytest.raises(ValidationError, match="NUL"):
        Body(title="x\x00")
    assert Body.model_json_schema()["properties"]["title"]["anyOf"][0] == {"maxLength": 5, "type": "string"}
