"""Exceptions of the SDK: every HTTP error carries the RFC 9457 problem+json fields.

PictureError
├── AuthenticationError   401 (missing, invalid or expired token) and 403
├── NotFoundError         404
├── ValidationError       400 / 422 (``field`` names the input)
├── ConflictError         409
├── RateLimitError        429 (``retry_after`` seconds, ``reset`` when the limit resets)
├── ServerError           5xx
├── TransportError        the gateway could not be reached (connection, timeout, broken stream)
└── GenerationFailedError a generation (or batch) ended failed or cancelled
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class PictureError(Exception):
    """Base of every SDK error. HTTP errors carry the problem document's fields."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        problem: dict[str, Any] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
        self.errors = errors or []
        self.problem = problem or {}
        self.response = response

    def __str__(self) -> str:
        return self.message


class AuthenticationError(PictureError):
    """401/403: the token is missing, invalid, expired, or not allowed to do this."""

    @property
    def expired(self) -> bool:
        return "expired" in (self.detail or "").lower()


class NotFoundError(PictureError):
    pass


class ValidationError(PictureError):
    pass


class ConflictError(PictureError):
    pass


class RateLimitError(PictureError):
    """429. ``retry_after``: seconds to wait; ``reset``: when the limit resets (UTC);
    ``limit_reason``: which limit (hourly, daily, concurrent, rate, streams ...)."""

    def __init__(self, message: str, *, retry_after: float | None, reset: datetime | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.reset = reset
        self.limit_reason: str | None = self.problem.get("limit_reason")


class ServerError(PictureError):
    pass


class TransportError(PictureError):
    pass


class WaitTimeoutError(PictureError):
    """Waiting for a generation or batch took longer than the caller's timeout."""


class GenerationFailedError(PictureError):
    """A generation ended ``failed`` or ``cancelled``; ``generation`` is its final state."""

    def __init__(self, message: str, generation: Any) -> None:
        super().__init__(message)
        self.generation = generation


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_response(response: httpx.Response) -> PictureError:
    """The exception for a non-2xx answer, with the problem document's fields."""
    problem: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict):
            problem = body
    except ValueError:
        pass
    status = response.status_code
    title = problem.get("title") or response.reason_phrase or f"HTTP {status}"
    detail = problem.get("detail")
    message = f"{status} {title}" + (f": {detail}" if detail else "")
    kw: dict[str, Any] = {
        "status": status,
        "type": problem.get("type"),
        "title": title,
        "detail": detail,
        "field": problem.get("field"),
        "errors": problem.get("errors"),
        "problem": problem,
        "response": response,
    }
    if status in (401, 403):
        return AuthenticationError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status in (400, 422):
        return ValidationError(message, **kw)
    if status == 409:
        return ConflictError(message, **kw)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        reset = datetime.now(UTC) + timedelta(seconds=retry_after) if retry_after is not None else None
        return RateLimitError(message, retry_after=retry_after, reset=reset, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return PictureError(message, **kw)
