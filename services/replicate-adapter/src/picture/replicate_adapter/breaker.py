"""A circuit breaker in front of Replicate (closed -> open -> half-open -> closed).

- closed: every call goes through; outcomes land in a sliding time window. When the window
  holds at least ``min_calls`` outcomes and the share of failures reaches ``failure_rate``,
  the breaker opens.
- open: no call is made at all; :meth:`CircuitBreaker.acquire` raises :class:`BreakerOpen`
  (a transient error, so the work is retried later) until ``open_seconds`` have passed.
- half-open: up to ``half_open_probes`` calls at once go through; that many successes close
  the breaker, one failure opens it again.

What counts: connection errors, timeouts and 5xx are failures; any other answer (2xx, 4xx)
is a success (Replicate is up). A 429 is neutral: it is honoured by waiting, never opens the
breaker, and releases a half-open probe without deciding.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

from picture.replicate_adapter.errors import TransientReplicateError
from picture.replicate_adapter.metrics import BREAKER_REJECTED, BREAKER_STATE, BREAKER_TRANSITIONS


class State(IntEnum):
    """Values are the gauge's: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


class BreakerOpen(TransientReplicateError):
    """The breaker refused the call; nothing was sent to Replicate."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"Replicate circuit breaker is open (calls resume in {retry_after:.1f}s)",
            retry_after=retry_after,
        )


class CircuitBreaker:
    def __init__(
        self,
        *,
        window_seconds: float = 30.0,
        min_calls: int = 10,
        failure_rate: float = 0.5,
        open_seconds: float = 15.0,
        half_open_probes: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.open_seconds = open_seconds
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._state = State.CLOSED
        self._window: deque[tuple[float, bool]] = deque()  # (time, failed)
        self._failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0
        BREAKER_STATE.set(State.CLOSED)

    @property
    def state(self) -> State:
        """The state now (an open breaker whose time is up reads as half-open)."""
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.open_seconds:
            self._transition(State.HALF_OPEN)
        return self._state

    def acquire(self) -> bool:
        """Call before each request. Returns True when the call is a half-open probe (pass it
        back to :meth:`record`); raises :class:`BreakerOpen` when no call may be made."""
        state = self.state
        if state is State.CLOSED:
            return False
        if state is State.HALF_OPEN and self._probes_in_flight < self.half_open_probes:
            self._probes_in_flight += 1
            return True
        BREAKER_REJECTED.inc()
        wait = max(0.0, self.open_seconds - (self._clock() - self._opened_at))
        raise BreakerOpen(wait if state is State.OPEN else min(1.0, self.open_seconds))

    def record(self, *, probe: bool, failed: bool | None) -> None:
        """The outcome of a call admitted by :meth:`acquire`: ``failed`` True (5xx, timeout,
        connection), False (any other answer), None (neutral: 429, or the call was
        abandoned)."""
        if probe:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            if self._state is not State.HALF_OPEN or failed is None:
                return
            if failed:
                self._open()
                return
            self._probe_successes += 1
            if self._probe_successes >= self.half_open_probes:
                self._transition(State.CLOSED)
            return
        if failed is None or self._state is not State.CLOSED:
            return
        now = self._clock()
        self._window.append((now, failed))
        self._failures += failed
        horizon = now - self.window_seconds
        while self._window and self._window[0][0] < horizon:
            _, old_failed = self._window.popleft()
            self._failures -= old_failed
        calls = len(self._window)
        if failed and calls >= self.min_calls and self._failures / calls >= self.failure_rate:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._transition(State.OPEN)

    def _transition(self, to: State) -> None:
        if to is self._state:
            return
        BREAKER_TRANSITIONS.labels(self._state.label, to.label).inc()
        self._state = to
        BREAKER_STATE.set(to)
        self._window.clear()
        self._failures = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
