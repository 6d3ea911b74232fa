"""The gateway's error tree: every error a route raises is one of these, and each is one
problem+json answer (the app's ProblemError handler writes it; routes never build responses
for errors)::

    GatewayError (a ProblemError)     status, type slug, title, detail, field
    ├── PermanentError                the request as sent will not succeed: change it first
    │   ├── Unauthenticated           401
    │   ├── Forbidden                 403
    │   ├── NotFound                  404
    │   ├── Conflict                  409
    │   └── InvalidField              422
    └── TransientError                the same request may succeed later: retry
        ├── Unavailable               503 with Retry-After
        └── limits.LimitExceeded      429 with Retry-After and RateLimit headers

(routes.replicate_webhooks.WebhookRefused answers Replicate itself: its status says which.)

A backing service's typed query error becomes one of these in one place, :func:`problem_for`
(called by :meth:`picture.gateway.backend.Backend.ask`, the one way routes query).
"""

from __future__ import annotations

from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from picture.common.problems import ProblemError


class GatewayError(ProblemError):
    """Base of the gateway's problems."""


class PermanentError(GatewayError):
    """The client's request is wrong (or not allowed): retrying it unchanged fails again."""


class TransientError(GatewayError):
    """A backing service or a limit is in the way for now: the same request may succeed later."""


class Unauthenticated(PermanentError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            401,
            "unauthenticated",
            "Authentication required",
            detail,
            headers={"WWW-Authenticate": 'Bearer realm="picture"'},
        )


class Forbidden(PermanentError):
    def __init__(self, detail: str) -> None:
        super().__init__(403, "forbidden", "Forbidden", detail)


class NotFound(PermanentError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not-found", "Not found", f"{what} not found")


class InvalidField(PermanentError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(422, "validation-error", "Invalid request", detail, field=field)


class Conflict(PermanentError):
    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(409, "conflict", "Conflict", detail, field=field)


class Unavailable(TransientError):
    """A backing service did not answer: the client may retry."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "unavailable", "Service unavailable", detail, headers={"Retry-After": "2"})


def problem_for(exc: QueryFailed, what: str) -> GatewayError:
    """The problem a failed query answers with; ``what`` names the resource asked for.

    Not found, invalid and conflict are the service's verdict on the request (permanent);
    anything else (unavailable, internal, no answer in time) may pass: 503, retry.
    """
    if exc.code is c.QueryErrorCode.NOT_FOUND:
        return NotFound(what)
    if exc.code is c.QueryErrorCode.INVALID:
        return InvalidField(exc.field or "body", exc.message)
    if exc.code is c.QueryErrorCode.CONFLICT:
        return Conflict(exc.message, field=exc.field)
    return Unavailable(f"{what}: {exc.message}")
