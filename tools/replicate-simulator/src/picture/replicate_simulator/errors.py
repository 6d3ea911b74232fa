"""RFC 7807 problem-details errors and the FastAPI exception handlers that render them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from picture.replicate_simulator.schemas import InvalidField

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "https://replicate.com/docs/reference/http#"

_TITLES = {
    400: "Bad Request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Input validation failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ProblemError(Exception):
    """An error answered as ``application/problem+json``; ``invalid_fields`` (Replicate's list
    of ``{type, field, description}``) is added to the body when given."""

    def __init__(
        self,
        status: int,
        detail: str,
        title: str | None = None,
        invalid_fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.invalid_fields = invalid_fields


def problem_response(
    status: int,
    detail: str,
    instance: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    invalid_fields: list[dict[str, str]] | None = None,
) -> JSONResponse:
    """Build a problem-details response."""
    resolved_title = title or _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": _TYPE_BASE + resolved_title.lower().replace(" ", "-"),
        "title": resolved_title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if invalid_fields is not None:
        body["invalid_fields"] = invalid_fields
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def input_validation_error(errors: list[InvalidField]) -> ProblemError:
    """Replicate's 422 for a request or an input that does not match its schema."""
    detail = "".join(f"- {e.field}: {e.description}\n" if e.field else f"- {e.description}\n" for e in errors)
    return ProblemError(422, detail, invalid_fields=[e.as_dict() for e in errors])


def _body_errors(exc: RequestValidationError) -> list[InvalidField]:
    """The request body's errors as Replicate names them (a missing or unknown top-level
    property has an empty ``field``)."""
    found = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        kind = err.get("type", "invalid")
        if kind == "extra_forbidden" and len(loc) == 1:
            found.append(
                InvalidField(
                    "additional_property_not_allowed", "", f"Additional property {loc[0]} is not allowed"
                )
            )
        elif kind == "missing" and len(loc) == 1:
            found.append(InvalidField("required", "", f"{loc[0]} is required"))
        else:
            found.append(InvalidField(str(kind), ".".join(loc), str(err.get("msg", "invalid"))))
    return found


class RateLimitedError(Exception):
    """A throttled request, answered like Replicate's 429 (not problem details)."""

    def __init__(self, reset_seconds: int = 30, retry_after: int | None = None) -> None:
        super().__init__("throttled")
        self.reset_seconds = reset_seconds
        self.retry_after = retry_after


async def _rate_limited_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitedError)
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(exc.reset_seconds)}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    detail = f"Request was throttled. Your rate limit resets in ~{exc.reset_seconds}s."
    return JSONResponse({"detail": detail}, status_code=429, headers=headers)


async def _problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status, exc.detail, request.url.path, exc.title, invalid_fields=exc.invalid_fields
    )


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return await _problem_handler(request, input_validation_error(_body_errors(exc)))


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(
        exc.status_code, str(exc.detail), request.url.path, headers=dict(exc.headers or {})
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem-details response."""
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(RateLimitedError, _rate_limited_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
