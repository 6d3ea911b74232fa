"""When to retry and how long to wait: shared by the sync and async clients.

- Retried: 429 and 5xx answers (500, 502, 503, 504) and transport errors.
- Only when repeating is safe: idempotent methods, or a POST carrying an Idempotency-Key (the
  SDK sends one with every submit, generated per logical call and reused across its retries).
  A connection that could not be opened is always safe to retry: nothing was sent.
- ``only_rejected``: for a POST whose key the server does not honour (batch submits today),
  only answers that prove nothing was done are retried: 429 (refused before any work) and
  connections never opened.
- Wait: the server's Retry-After when given (a 429 whose Retry-After is beyond
  ``max_retry_after`` is raised at once: waiting an hour for a quota is the caller's choice),
  else exponential backoff with full jitter, ``base * 2**attempt`` capped at ``max_delay``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from picture.client.errors import parse_retry_after

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def replayable(self, request: httpx.Request) -> bool:
        return request.method in IDEMPOTENT_METHODS or "Idempotency-Key" in request.headers

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def delay_for_response(
        self, response: httpx.Response, attempt: int, *, only_rejected: bool = False
    ) -> float | None:
        """Seconds to wait before retrying this answer, or None: do not retry."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
            return None
        if not self.replayable(response.request) or (only_rejected and response.status_code != 429):
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + self.rng.uniform(0, min(1.0, self.base_delay))
        return self.backoff(attempt)

    def delay_for_error(
        self,
        request: httpx.Request,
        error: httpx.TransportError,
        attempt: int,
        *,
        only_rejected: bool = False,
    ) -> float | None:
        if attempt >= self.max_retries:
            return None
        never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
        if not (never_sent or (self.replayable(request) and not only_rejected)):
            return None
        return self.backoff(attempt)
