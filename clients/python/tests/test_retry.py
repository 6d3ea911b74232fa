"""Retries: 429/5xx with backoff honouring Retry-After, only when repeating is safe."""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest
from picture_client_fakes import generation_json

from picture.client import (
    AuthenticationError,
    Picture,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
)
from picture.client.errors import parse_retry_after

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **kw: object) -> Picture:
        policy = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8, rng=random.Random(1))
        return Picture(
            "tok",
            base_url="http://picture.test",
            transport=httpx.MockTransport(self),
            sleep=self.sleeps.append,
            retry=policy,
            **kw,  # type: ignore[arg-type]
        )


def problem(status: int, detail: str, **extra: object) -> dict[str, object]:
    return {
        "type": "https://picture.dev/problems/x",
        "title": "t",
        "status": status,
        "detail": detail,
        **extra,
    }


LIMITS = {
    "can_generate": True,
    "limit_reason": None,
    "daily_used": 1,
    "daily_limit": 100,
    "daily_reset_at": "2026-11-30T00:00:00Z",
    "hourly_used": 1,
    "hourly_limit": 20,
    "hourly_reset_at": "2026-11-29T23:00:00Z",
    "active_generations": 0,
    "max_concurrent": 2,
    "total_all_time": 1,
}


def test_429_with_retry_after_then_200_waits_as_told() -> None:
    rec = Recorder(
        httpx.Response(429, json=problem(429, "slow down"), headers={"Retry-After": "2"}),
        httpx.Response(200, json=LIMITS),
    )
    with rec.client() as client:
        limits = client.limits()
    assert limits.hourly_limit == 20
    assert len(rec.requests) == 2
    assert len(rec.sleeps) == 1
    assert 2.0 <= rec.sleeps[0] <= 2.5  # Retry-After plus a little jitter


def test_503_is_retried_with_growing_capped_backoff() -> None:
    rec = Recorder(
        httpx.Response(503, json=problem(503, "busy")),
        httpx.Response(503, json=problem(503, "busy")),
        httpx.Response(200, json=LIMITS),
    )
    with rec.client() as client:
        client.limits()
    assert len(rec.requests) == 3
    assert len(rec.sleeps) == 2
    assert 0 <= rec.sleeps[0] <= 0.5 and 0 <= rec.sleeps[1] <= 1.0  # full jitter under base * 2**n


def test_retries_are_bounded() -> None:
    rec = Recorder(*(httpx.Response(502, json=problem(502, "bad gateway")) for _ in range(4)))
    with rec.client() as client, pytest.raises(ServerError) as caught:
        client.limits()
    assert len(rec.requests) == 4  # the first try and three retries
    assert caught.value.status == 502 and caught.value.detail == "bad gateway"


def test_400_is_not_retried_and_carries_the_problem_fields() -> None:
    body = problem(
        422, "width too large", field="body.width", errors=[{"field": "body.width", "message": "big"}]
    )
    rec = Recorder(httpx.Response(422, json=body, headers={"Content-Type": "application/problem+json"}))
    with rec.client() as client, pytest.raises(ValidationError) as caught:
        client.submit("a cat", model="flux-schnell", width=4000)
    assert len(rec.requests) == 1 and rec.sleeps == []
    assert caught.value.field == "body.width"
    assert caught.value.errors == [{"field": "body.width", "message": "big"}]


def test_401_maps_to_authentication_error_and_knows_expiry() -> None:
    rec = Recorder(httpx.Response(401, json=problem(401, "token expired")))
    with rec.client() as client, pytest.raises(AuthenticationError) as caught:
        client.me()
    assert caught.value.expired


def test_submit_reuses_its_idempotency_key_across_retries_and_not_across_calls() -> None:
    rec = Recorder(
        httpx.Response(503, json=problem(503, "busy")),
        httpx.Response(429, json=problem(429, "rate"), headers={"Retry-After": "1"}),
        httpx.Response(202, json=generation_json("queued")),
        httpx.Response(202, json=generation_json("queued")),
    )
    with rec.client() as client:
        client.submit("a cat", model="flux-schnell", seed=7)
        client.submit("a cat", model="flux-schnell", seed=7)
    keys = [r.headers.get("Idempotency-Key") for r in rec.requests]
    assert keys[0] and keys[0] == keys[1] == keys[2]
    assert keys[3] and keys[3] != keys[0]


def test_post_without_idempotency_key_is_never_retried() -> None:
    rec = Recorder(httpx.Response(503, json=problem(503, "busy")))
    with rec.client() as client, pytest.raises(ServerError):
        client.cancel("0190f0a0-0000-7000-8000-000000000001")
    assert len(rec.requests) == 1 and rec.sleeps == []


def test_a_long_retry_after_is_raised_at_once_with_the_reset_time() -> None:
    rec = Recorder(
        httpx.Response(
            429,
            json=problem(429, "hourly generation limit reached (20 an hour)", limit_reason="hourly"),
            headers={"Retry-After": "1800"},
        )
    )
    with rec.client() as client, pytest.raises(RateLimitError) as caught:
        client.limits()
    assert len(rec.requests) == 1
    assert caught.value.retry_after == 1800 and caught.value.reset is not None
    assert caught.value.limit_reason == "hourly"


def test_connection_refused_is_retried_then_a_transport_error() -> None:
    rec = Recorder(*(httpx.ConnectError("refused") for _ in range(4)))
    with rec.client() as client, pytest.raises(TransportError):
        client.cancel("0190f0a0-0000-7000-8000-000000000001")  # nothing was sent: safe even for POST
    assert len(rec.requests) == 4


def test_retry_after_as_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 29 Nov 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None) is None


BATCH = {
    "id": "0190f0a0-0000-7000-8000-0000000000bb",
    "name": None,
    "kind": "batch",
    "model": "flux-schnell",
    "status": "pending",
    "total": 2,
    "completed": 0,
    "failed": 0,
    "pending": 2,
    "processing": 0,
    "created_at": "2026-11-29T12:00:00Z",
    "items": [],
}


def test_batch_submit_retries_only_what_was_surely_refused() -> None:
    rec = Recorder(
        httpx.Response(429, json=problem(429, "rate"), headers={"Retry-After": "1"}),
        httpx.Response(202, json=BATCH),
        httpx.Response(503, json=problem(503, "orchestrator did not answer")),
    )
    with rec.client() as client:
        assert client.submit_batch(["a", "b"], model="flux-schnell").total == 2
        with pytest.raises(ServerError):  # it may have been created: the gateway does not dedupe batches
            client.submit_batch(["a", "b"], model="flux-schnell")
    assert len(rec.requests) == 3
    assert rec.requests[0].headers["Idempotency-Key"] == rec.requests[1].headers["Idempotency-Key"]


def test_invalid_input_is_refused_before_sending_with_the_field() -> None:
    rec = Recorder()
    with rec.client() as client, pytest.raises(ValidationError) as caught:
        client.submit("a cat", model="flux-schnell", width=9000)
    assert caught.value.field == "body.width" and rec.requests == []
