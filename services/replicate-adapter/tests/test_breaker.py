"""The circuit breaker's state machine, on a fake clock, and its place in the client (a mock
transport counts the requests that really leave)."""

from __future__ import annotations

import httpx
import pytest

from picture.replicate_adapter.breaker import BreakerOpen, CircuitBreaker, State
from picture.replicate_adapter.errors import PermanentReplicateError, TransientReplicateError
from picture.replicate_adapter.handlers import retry_delay
from picture.replicate_adapter.metrics import BREAKER_STATE, BREAKER_TRANSITIONS
from picture.replicate_adapter.replicate import ReplicateClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **kw: float) -> CircuitBreaker:
    options = {"window_seconds": 10.0, "min_calls": 4, "failure_rate": 0.5, "open_seconds": 5.0}
    options.update(kw)
    return CircuitBreaker(
        window_seconds=options["window_seconds"],
        min_calls=int(options["min_calls"]),
        failure_rate=options["failure_rate"],
        open_seconds=options["open_seconds"],
        half_open_probes=int(options.get("half_open_probes", 2)),
        clock=clock,
    )


def call(b: CircuitBreaker, failed: bool | None) -> None:
    probe = b.acquire()
    b.record(probe=probe, failed=failed)


def test_opens_at_threshold_only_with_enough_calls() -> None:
    clock = Clock()
    b = breaker(clock)
    call(b, True)
    call(b, True)
    call(b, True)  # 3 of 3 failed, but fewer than min_calls
    assert b.state is State.CLOSED
    call(b, True)
    assert b.state is State.OPEN
    assert BREAKER_STATE._value.get() == 2


def test_failure_rate_below_threshold_stays_closed() -> None:
    clock = Clock()
    b = breaker(clock, failure_rate=0.7)
    for failed in (True, False, True, False, True, False, False):  # at most 3/5 = 0.6
        call(b, failed)
    assert b.state is State.CLOSED


def test_old_outcomes_leave_the_window() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        call(b, True)
    clock.now += 11  # the three failures are out of the window
    call(b, True)
    assert b.state is State.CLOSED


def test_neutral_outcomes_do_not_count() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(10):
        call(b, None)  # 429s
    call(b, True)
    assert b.state is State.CLOSED


def test_open_refuses_then_half_open_probes_close_it() -> None:
    clock = Clock()
    b = breaker(clock, half_open_probes=2)
    for _ in range(4):
        call(b, True)
    with pytest.raises(BreakerOpen) as refused:
        b.acquire()
    assert refused.value.retry_after == pytest.approx(5.0)
    assert isinstance(refused.value, TransientReplicateError)
    clock.now += 5
    assert b.state is State.HALF_OPEN
    first, second = b.acquire(), b.acquire()
    assert first and second
    with pytest.raises(BreakerOpen):  # only two probes at once
        b.acquire()
    b.record(probe=True, failed=False)
    assert b.state is State.HALF_OPEN
    b.record(probe=True, failed=False)
    assert b.state is State.CLOSED
    assert not b.acquire()


def test_failed_probe_opens_again() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(4):
        call(b, True)
    clock.now += 5
    before = BREAKER_TRANSITIONS.labels("half-open", "open")._value.get()
    call(b, True)
    assert b.state is State.OPEN
    assert BREAKER_TRANSITIONS.labels("half-open", "open")._value.get() == before + 1
    clock.now += 4.9
    with pytest.raises(BreakerOpen):
        b.acquire()


def test_neutral_probe_frees_its_slot_without_deciding() -> None:
    clock = Clock()
    b = breaker(clock, half_open_probes=1)
    for _ in range(4):
        call(b, True)
    clock.now += 5
    call(b, None)
    assert b.state is State.HALF_OPEN
    call(b, False)
    assert b.state is State.CLOSED


async def test_client_counts_5xx_and_timeouts_not_4xx_and_sends_nothing_while_open() -> None:
    sent: list[str] = []
    answers = iter([404, 422, 500, 503, "timeout", 502])

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        answer = next(answers)
        if answer == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        assert isinstance(answer, int)
        return httpx.Response(answer, json={"detail": "x"})

    clock = Clock()
    b = breaker(clock, min_calls=6, failure_rate=0.6)
    http = httpx.AsyncClient(base_url="http://replicate.test", transport=httpx.MockTransport(handler))
    client = ReplicateClient(http, breaker=b)
    for expected in (PermanentReplicateError, PermanentReplicateError):
        with pytest.raises(expected):
            await client.get_prediction("p")
    for _ in range(4):
        with pytest.raises(TransientReplicateError):
            await client.get_prediction("p")
    assert b.state is State.OPEN  # 4 failures of 6 calls
    assert len(sent) == 6
    for _ in range(20):
        with pytest.raises(BreakerOpen):
            await client.get_prediction("p")
    assert len(sent) == 6  # zero calls while open
    await http.aclose()


async def test_client_429_does_not_open() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"detail": "Request was throttled. Expected available in 3 seconds."}, headers={}
        )

    clock = Clock()
    b = breaker(clock, min_calls=2)
    http = httpx.AsyncClient(base_url="http://replicate.test", transport=httpx.MockTransport(handler))
    client = ReplicateClient(http, breaker=b)
    for _ in range(10):
        with pytest.raises(TransientReplicateError):
            await client.get_prediction("p")
    assert b.state is State.CLOSED
    await http.aclose()


def test_retry_delay_full_jitter_and_capped_retry_after() -> None:
    delays = [retry_delay(4) for _ in range(300)]
    assert min(delays) >= 0.0
    assert max(delays) <= 8.0
    assert min(delays) < 2.0  # full jitter reaches near zero, not only [ceiling/2, ceiling]
    assert retry_delay(1, retry_after=12.0) >= 12.0
    assert retry_delay(1, retry_after=600.0, max_retry_after=30.0) <= 30.0
    assert retry_delay(1, retry_after=600.0, max_retry_after=30.0) >= 30.0
