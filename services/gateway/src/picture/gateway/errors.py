"""The gateway's error tree: each maps to one problem+json answer."""

from __future__ import annotations

from picture.common.problems import ProblemError


class Unauthenticated(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            401,
            "unauthenticated",
            "Authentication required",
            detail,
            headers={"WWW-Authenticate": 'Bearer realm="picture"'},
        )


class NotFound(ProblemError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not-found", "Not found", f"{what} not found")


class InvalidField(ProblemError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(422, "validation-error", "Invalid request", detail, field=field)


class Conflict(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(409, "conflict", "Conflict", detail)


class Unavailable(ProblemError):
    """A backing service did not answer: transient, the client may retry."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "unavailable", "Service unavailable", detail, headers={"Retry-After": "2"})
