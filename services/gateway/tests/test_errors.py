"""The error tree and the one way from a failed query to a problem."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest

from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from picture.gateway.backend import Backend
from picture.gateway.errors import (
    Conflict,
    InvalidField,
    NotFound,
    PermanentError,
    TransientError,
    Unavailable,
    problem_for,
)
from picture.gateway.limits import LimitExceeded


@pytest.mark.parametrize(
    ("code", "field", "kind", "status", "problem_field"),
    [
        (c.QueryErrorCode.NOT_FOUND, None, NotFound, 404, None),
        (c.QueryErrorCode.INVALID, "width", InvalidField, 422, "width"),
        (c.QueryErrorCode.INVALID, None, InvalidField, 422, "body"),
        (c.QueryErrorCode.CONFLICT, "username", Conflict, 409, "username"),
        (c.QueryErrorCode.CONFLICT, None, Conflict, 409, None),
        (c.QueryErrorCode.UNAVAILABLE, None, Unavailable, 503, None),
        (c.QueryErrorCode.INTERNAL, None, Unavailable, 503, None),
    ],
)
def test_each_query_error_code_is_one_problem(
    code: c.QueryErrorCode, field: str | None, kind: type, status: int, problem_field: str | None
) -> None:
    problem = problem_for(QueryFailed(code, "it went wrong", field), "image")
    assert isinstance(problem, kind)
    assert (problem.status, problem.field) == (status, problem_field)


def test_not_found_names_the_resource_and_unavailable_says_what_failed() -> None:
    assert problem_for(QueryFailed(c.QueryErrorCode.NOT_FOUND, "no row"), "image").detail == "image not found"
    down = problem_for(QueryFailed(c.QueryErrorCode.UNAVAILABLE, "no answer"), "profile")
    assert down.detail == "profile: no answer"
    assert down.headers == {"Retry-After": "2"}


def test_permanent_and_transient_are_explicit() -> None:
    for permanent in (c.QueryErrorCode.NOT_FOUND, c.QueryErrorCode.INVALID, c.QueryErrorCode.CONFLICT):
        assert isinstance(problem_for(QueryFailed(permanent, "x"), "it"), PermanentError)
    for transient in (c.QueryErrorCode.UNAVAILABLE, c.QueryErrorCode.INTERNAL):
        assert isinstance(problem_for(QueryFailed(transient, "x"), "it"), TransientError)
    limited = LimitExceeded("hourly", "too many", limit=20, window=3600, reset_in=10)
    assert isinstance(limited, TransientError)


class RefusingBus:
    def __init__(self, error: QueryFailed) -> None:
        self.error = error

    async def request(self, query: Any, message: Any) -> Any:
        raise self.error


async def test_backend_ask_raises_the_problem_of_a_failed_query() -> None:
    failed = QueryFailed(c.QueryErrorCode.NOT_FOUND, "no such profile")
    backend = Backend(cast(Any, RefusingBus(failed)), 30.0, cast(Any, None))
    with pytest.raises(NotFound) as raised:
        await backend.ask(c.GET_PROFILE, c.GetProfileRequest(user_id=uuid.uuid4()), "profile")
    assert raised.value.__cause__ is failed


async def test_an_unknown_model_is_an_invalid_field_not_a_404() -> None:
    backend = Backend(
        cast(Any, RefusingBus(QueryFailed(c.QueryErrorCode.NOT_FOUND, "no"))), 30.0, cast(Any, None)
    )
    with pytest.raises(InvalidField) as raised:
        await backend.model("nope")
    assert raised.value.field == "model"
