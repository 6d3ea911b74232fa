"""The Replicate client against httpx.MockTransport: routes, auth, output shapes, errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from picture.common.contracts import ModelSpec
from picture.replicate_adapter.errors import PermanentReplicateError, TransientReplicateError
from picture.replicate_adapter.replicate import (
    Prediction,
    ReplicateClient,
    build_http_client,
    normalize_output,
)

OFFICIAL = ModelSpec(name="flux-schnell", display_name="F", replicate_id="black-forest-labs/flux-schnell")
VERSIONED = ModelSpec(name="sdxl", display_name="S", replicate_id="stability-ai/sdxl", version="abc123")


def body(status: str = "starting", **extra: Any) -> dict[str, Any]:
    return {"id": "p1", "status": status, "output": None, "error": None, "metrics": {}} | extra


def client(handler: Callable[[httpx.Request], httpx.Response]) -> ReplicateClient:
    http = build_http_client(
        "http://replicate.test/", "tok", timeout=1, transport=httpx.MockTransport(handler)
    )
    return ReplicateClient(http)


async def test_create_on_official_model_endpoint() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=body())

    prediction = await client(handler).create_prediction(OFFICIAL, {"prompt": "x"})
    assert prediction.id == "p1"
    assert prediction.status == "starting"
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert request.headers["authorization"] == "Bearer tok"
    assert json.loads(request.content) == {"input": {"prompt": "x"}}


async def test_create_with_version_and_cancel_after() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=body())

    await client(handler).create_prediction(VERSIONED, {"prompt": "x"}, cancel_after_seconds=90.4)
    assert seen[0].url.path == "/v1/predictions"
    assert json.loads(seen[0].content) == {"version": "abc123", "input": {"prompt": "x"}}
    assert seen[0].headers["cancel-after"] == "90s"


async def test_get_and_cancel_paths() -> None:
    paths: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append((request.method, request.url.path))
        return httpx.Response(
            200, json=body("succeeded", output=["https://x/1.webp"], metrics={"predict_time": 1.25})
        )

    c = client(handler)
    got = await c.get_prediction("p1")
    assert got.output_urls == ("https://x/1.webp",)
    assert got.predict_time == 1.25
    await c.cancel_prediction("p1")
    assert paths == [("GET", "/v1/predictions/p1"), ("POST", "/v1/predictions/p1/cancel")]


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        (["https://a/1.webp", "https://a/2.webp"], ("https://a/1.webp", "https://a/2.webp")),
        ("https://a/1.png", ("https://a/1.png",)),
        ({"url": "https://a/1.svg"}, ("https://a/1.svg",)),
        ([{"url": "https://a/1.svg"}], ("https://a/1.svg",)),
        (None, ()),
        ("", ()),
        ([], ()),
        (42, ()),
    ],
)
def test_normalize_output(output: Any, urls: tuple[str, ...]) -> None:
    assert normalize_output(output) == urls


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        ("starting", False),
        ("processing", False),
        ("succeeded", True),
        ("failed", True),
        ("canceled", True),
        ("aborted", True),
        ("something_new", True),
    ],
)
def test_terminal_statuses(status: str, terminal: bool) -> None:
    assert Prediction(id="p", status=status).is_terminal is terminal


def problem(status: int, detail: str, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            headers=headers,
            json={"type": "about:blank", "title": "Error", "status": status, "detail": detail},
        )

    return handler


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(problem(500, "boom"), id="500"),
        pytest.param(problem(502, "bad gateway"), id="502"),
        pytest.param(problem(503, "unavailable"), id="503"),
        pytest.param(raising(httpx.ConnectError("refused")), id="connect-error"),
        pytest.param(raising(httpx.ConnectTimeout("slow")), id="connect-timeout"),
        pytest.param(raising(httpx.ReadTimeout("slow")), id="read-timeout"),
    ],
)
async def test_transient_errors(handler: Callable[[httpx.Request], httpx.Response]) -> None:
    with pytest.raises(TransientReplicateError):
        await client(handler).get_prediction("p1")


@pytest.mark.parametrize(
    ("handler", "maybe_created"),
    [
        pytest.param(raising(httpx.ConnectError("refused")), False, id="connect-error"),
        pytest.param(raising(httpx.ConnectTimeout("slow")), False, id="connect-timeout"),
        pytest.param(problem(503, "unavailable"), False, id="503"),
        pytest.param(raising(httpx.ReadTimeout("slow")), True, id="read-timeout"),
        pytest.param(problem(504, "gateway timeout"), True, id="504"),
    ],
)
async def test_create_may_have_reached_replicate(
    handler: Callable[[httpx.Request], httpx.Response], maybe_created: bool
) -> None:
    with pytest.raises(TransientReplicateError) as info:
        await client(handler).create_prediction(OFFICIAL, {"prompt": "x"})
    assert info.value.maybe_created is maybe_created


@pytest.mark.parametrize(
    ("handler", "retry_after"),
    [
        pytest.param(
            problem(429, "Request was throttled. Your rate limit resets in ~30s."), 30.0, id="detail"
        ),
        pytest.param(problem(429, "Request was throttled.", **{"Retry-After": "7"}), 7.0, id="header"),
        pytest.param(problem(429, "Request was throttled."), None, id="none"),
    ],
)
async def test_throttled_is_transient_with_retry_after(
    handler: Callable[[httpx.Request], httpx.Response], retry_after: float | None
) -> None:
    with pytest.raises(TransientReplicateError) as info:
        await client(handler).create_prediction(OFFICIAL, {"prompt": "x"})
    assert info.value.status == 429
    assert info.value.retry_after == retry_after
    assert info.value.maybe_created is False


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_permanent_errors_carry_the_detail(status: int) -> None:
    handler = problem(status, "Invalid input: prompt is required")
    with pytest.raises(PermanentReplicateError) as info:
        await client(handler).create_prediction(OFFICIAL, {"prompt": "x"})
    assert info.value.status == status
    assert "Invalid input: prompt is required" in info.value.message


@pytest.mark.parametrize(
    ("extra", "seconds"),
    [
        ({"created_at": "2025-01-01T10:00:00.5Z", "completed_at": "2025-01-01T10:00:12.75Z"}, 12.25),
        ({"created_at": "2025-01-01T10:00:00Z", "completed_at": None, "metrics": {"predict_time": 3.5}}, 3.5),
        ({"created_at": "2025-01-01T10:00:00Z"}, None),
    ],
)
def test_run_seconds_is_replicate_created_to_completed(extra: dict[str, Any], seconds: float | None) -> None:
    assert Prediction.from_json(body("succeeded") | extra).run_seconds == seconds


async def test_the_bulkhead_caps_calls_in_flight() -> None:
    """A slow Replicate: 20 calls at once, never more than max_concurrency in flight; the rest
    wait their turn and all complete."""
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.05)
            return httpx.Response(200, json=body("processing", id=request.url.path.rsplit("/", 1)[-1]))
        finally:
            in_flight -= 1

    http = build_http_client("http://replicate.test/", "tok", timeout=5, transport=httpx.MockTransport(slow))
    replicate = ReplicateClient(http, max_concurrency=3)
    try:
        predictions = await asyncio.gather(*(replicate.get_prediction(f"p{i}") for i in range(20)))
    finally:
        await http.aclose()
    assert [p.id for p in predictions] == [f"p{i}" for i in range(20)]
    assert peak == 3


def test_a_prediction_error_keeps_only_text_that_can_be_stored() -> None:
    prediction = Prediction.from_json(
        json.loads('{"id": "p1", "status": "failed", "error": "CUDA\\u0000 \\ud800 oom"}')
    )
    assert prediction.error == "CUDA\ufffd \ufffd oom"
