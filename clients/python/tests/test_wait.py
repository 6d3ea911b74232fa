"""Waiting for a generation: the SSE stream first, polling when the stream fails."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from picture_client_fakes import GENERATION_ID, generation_json

from picture.client import AsyncPicture, NotFoundError, Picture, WaitTimeoutError

EVENTS = f"/v1/generations/{GENERATION_ID}/events"
ONE = f"/v1/generations/{GENERATION_ID}"


def sse(status: str, seq: int, **kw: object) -> bytes:
    return f"id: {seq}\nevent: generation\ndata: {json.dumps(generation_json(status, **kw))}\n\n".encode()  # type: ignore[arg-type]


class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An event stream that delivers its first event, a heartbeat, then breaks."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"retry: 2000\n\n" + sse("queued", 1, queue_position=3) + b": keep-alive\n\n"
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


class Gateway:
    """Events: broken (or a plain stream); GET: processing then completed."""

    def __init__(self, events: httpx.Response) -> None:
        self.events = events
        self.polls = 0
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path == EVENTS:
            return self.events
        assert request.url.path == ONE
        self.polls += 1
        return httpx.Response(200, json=generation_json("processing" if self.polls < 2 else "completed"))


def broken_stream() -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=Broken())


def sync_client(gateway: Gateway) -> Picture:
    return Picture(
        "tok", base_url="http://picture.test", transport=httpx.MockTransport(gateway), sleep=lambda _: None
    )


def test_a_broken_event_stream_falls_back_to_polling() -> None:
    gateway = Gateway(broken_stream())
    seen: list[str] = []
    with sync_client(gateway) as client:
        final = client.wait(GENERATION_ID, on_update=lambda g: seen.append(g.status.value))
    assert final.status.value == "completed" and final.image is not None
    assert gateway.paths[0] == EVENTS and gateway.polls == 2
    assert seen == ["queued", "processing", "completed"]


def test_an_event_stream_refused_with_503_falls_back_to_polling() -> None:
    gateway = Gateway(httpx.Response(503, json={"type": "x", "title": "Unavailable", "status": 503}))
    with sync_client(gateway) as client:
        assert client.wait(GENERATION_ID).status.value == "completed"
    assert gateway.polls == 2


def test_a_healthy_event_stream_needs_no_polling() -> None:
    body = (
        sse("queued", 1, queue_position=1) + b": keep-alive\n\n" + sse("processing", 2) + sse("completed", 3)
    )
    gateway = Gateway(httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=body))
    seen: list[str] = []
    with sync_client(gateway) as client:
        final = client.wait(GENERATION_ID, on_update=lambda g: seen.append(g.status.value))
    assert final.status.value == "completed"
    assert gateway.polls == 0 and seen == ["queued", "processing", "completed"]


def test_not_found_on_the_stream_is_not_papered_over_by_polling() -> None:
    gateway = Gateway(httpx.Response(404, json={"type": "x", "title": "Not found", "status": 404}))
    with sync_client(gateway) as client, pytest.raises(NotFoundError):
        client.wait(GENERATION_ID)
    assert gateway.polls == 0


async def test_async_client_falls_back_to_polling_too() -> None:
    gateway = Gateway(broken_stream())

    async def no_sleep(_: float) -> None:
        return None

    async with AsyncPicture(
        "tok", base_url="http://picture.test", transport=httpx.MockTransport(gateway), sleep=no_sleep
    ) as client:
        final = await client.wait(GENERATION_ID)
    assert final.status.value == "completed"
    assert gateway.paths[0] == EVENTS and gateway.polls == 2


class Heartbeats(httpx.SyncByteStream):
    """A stream that stays open with heartbeats only."""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield b": keep-alive\n\n"


def test_a_stalled_stream_does_not_outlive_the_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == EVENTS:
            return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=Heartbeats())
        return httpx.Response(200, json=generation_json("processing"))

    client = Picture(
        "tok", base_url="http://picture.test", transport=httpx.MockTransport(handler), sleep=lambda _: None
    )
    with client, pytest.raises(WaitTimeoutError):
        client.wait(GENERATION_ID, timeout=0.2)


def test_download_follows_a_redirect_to_storage_without_the_token(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "picture.test":
            return httpx.Response(307, headers={"Location": "https://storage.test/bucket/img.webp?sig=abc"})
        return httpx.Response(200, content=b"RIFF....WEBP")

    with Picture("tok", base_url="http://picture.test", transport=httpx.MockTransport(handler)) as client:
        path = client.download("0190f0a0-0000-7000-8000-0000000000aa", tmp_path / "x.webp")
    assert path.read_bytes() == b"RIFF....WEBP"
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert seen[1].url.host == "storage.test" and "Authorization" not in seen[1].headers
