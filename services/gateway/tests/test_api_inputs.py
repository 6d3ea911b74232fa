"""What the API takes in. Every text (body fields, query, path and header parameters, on
every route) is declared StorableText: PostgreSQL cannot store NUL or unpaired surrogates, and
a field that lets them through ends in a failed statement instead of a 422 naming it. The
routes with their own body caps are real routes."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, SecretStr
from pydantic.fields import FieldInfo

from picture.common.text import check_storable
from picture.gateway.app import REPLICATE_WEBHOOK_PATH, UPLOADS_PATH, create_app
from picture.gateway.settings import GatewaySettings


def _guarded(metadata: typing.Iterable[Any]) -> bool:
    return any(isinstance(m, AfterValidator) and m.func is check_storable for m in metadata)


def unguarded_text(annotation: Any, metadata: tuple[Any, ...] = (), path: str = "") -> list[str]:
    """The paths of every ``str`` inside ``annotation`` that is not StorableText."""
    if annotation is str:
        return [] if _guarded(metadata) else [path or "(value)"]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return unguarded_text(base, (*metadata, *extra), path)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found: list[str] = []
        for name, field in annotation.model_fields.items():
            found += unguarded_text(
                field.annotation, tuple(field.metadata), f"{path}.{name}" if path else name
            )
        return found
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset, dict):
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


def test_the_guard_sees_plain_str() -> None:
    class Nested(BaseModel):
        tags: list[str]

    class Body(BaseModel):
        title: str | None
        nested: Nested

    assert unguarded_text(Body) == ["title", "nested.tags"]
