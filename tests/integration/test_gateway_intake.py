"""What the gateway accepts on the wire before any route runs: headers and bodies that never
finish are cut off in bounded time, a JSON body larger than its route's cap is refused with
413 without being read (memory stays flat), and a request with a body but no valid token is
refused with 401 before its body is read. Spoken over raw sockets, as such clients do."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from picture.devstack.stack import ManagedProcess, Stack
from tests.integration.conftest import running_gateway

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
FORTY_MB = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> Iterator[ManagedProcess]:
    with running_gateway(
        stack,
        "gateway-intake",
        PICTURE_HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        PICTURE_HTTP_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
    ) as process:
        yield process


def rss_bytes(process: ManagedProcess) -> int:
    assert process.proc is not None
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Wire:
    """One raw HTTP/1.1 connection to the gateway."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""
        self.closed = False

    @classmethod
    async def open(cls, process: ManagedProcess) -> Wire:
        return cls(*await asyncio.open_connection("127.0.0.1", process.port))

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False when the server has closed the connection."""
        if self.closed:
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.closed = True
            return False
        return True

    async def poll(self, seconds: float) -> None:
        """Read what the server sent within ``seconds``; notice when it closes."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), seconds)
        except TimeoutError:
            return
        except (ConnectionError, OSError):
            self.closed = True
            return
        if not data:
            self.closed = True
        self.received += data

    @property
    def answered(self) -> bool:
        """A whole response (with a Content-Length) has arrived."""
        head, found, body = self.received.partition(b"\r\n\r\n")
        if not found:
            return False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(body) >= int(value)
        return False

    @property
    def status(self) -> int | None:
        if not self.received.startswith(b"HTTP/1.1 "):
            return None
        return int(self.received[9:12])

    def problem(self) -> dict[str, object]:
        head, _, body = self.received.partition(b"\r\n\r\n")
        assert b"content-type: application/problem+json" in head.lower(), head
        parsed: dict[str, object] = json.loads(body)
        return parsed

    def close(self) -> None:
        self.writer.close()


async def trickle_until_cut_off(wire: Wire, limit: float) -> float:
    """Send one byte every 0.2 s (a slowloris client) until the server answers and closes;
    returns how long that took (fails after ``limit`` seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        await wire.send(b"x")
        await wire.poll(0.2)
        if wire.closed:
            return time.monotonic() - started
    raise AssertionError(f"still open after {limit:.0f}s of trickling (received {wire.received[:200]!r})")


async def test_headers_that_never_finish_are_cut_off(gateway: ManagedProcess) -> None:
    wire = await Wire.open(gateway)
    try:
        await wire.send(b"POST /v1/generations HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        took = await trickle_until_cut_off(wire, limit=HEADER_TIMEOUT + 15)
    finally:
        wire.close()
    assert took < HEADER_TIMEOUT + 3, took
    assert wire.status in (None, 408), wire.received[:200]


async def test_a_connection_that_sends_nothing_is_closed(gateway: ManagedProcess) -> None:
    wire = await Wire.open(gateway)
    started = time.monotonic()
    try:
        while not wire.closed and time.monotonic() - started < HEADER_TIMEOUT + 15:
            await wire.poll(0.5)
    finally:
        wire.close()
    assert wire.closed
    assert time.monotonic() - started < HEADER_TIMEOUT + 3


async def test_a_body_that_never_finishes_is_cut_off_with_408(gateway: ManagedProcess, token: str) -> None:
    wire = await Wire.open(gateway)
    try:
        await wire.send(
            b"POST /v1/generations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
            b'{"model": "flux-schnell", "prompt": "'
        )
        took = await trickle_until_cut_off(wire, limit=BODY_TIMEOUT + 15)
    finally:
        wire.close()
    assert took < BODY_TIMEOUT + 3, took
    assert wire.status == 408, wire.received[:300]
    assert wire.problem()["status"] == 408


async def send_until_answered(wire: Wire, chunks: Iterator[bytes], limit: float = 60) -> None:
    """Write the body chunk by chunk, reading between writes, until the server answers (or
    everything was sent and it answered then)."""
    started = time.monotonic()
    for chunk in chunks:
        if not await wire.send(chunk):
            break
        await wire.poll(0.001)
        if wire.answered or wire.closed:
            return
        assert time.monotonic() - started < limit
    while not (wire.answered or wire.closed) and time.monotonic() - started < limit:
        await wire.poll(0.5)


def forty_mb_prompt() -> Iterator[bytes]:
    yield b'{"model": "flux-schnell", "prompt": "'
    block = b"a" * 65536
    for _ in range(FORTY_MB // len(block)):
        yield block
    yield b'"}'


def chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_40_mb_json_body_is_413_and_not_read_into_memory(
    gateway: ManagedProcess, token: str, framing: str
) -> None:
    before = rss_bytes(gateway)
    wire = await Wire.open(gateway)
    head = (
        b"POST /v1/generations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
    )
    started = time.monotonic()
    try:
        if framing == "content-length":
            length = sum(len(part) for part in forty_mb_prompt())
            await wire.send(head + b"Content-Length: %d\r\n\r\n" % length)
            await send_until_answered(wire, forty_mb_prompt())
        else:
            await wire.send(head + b"Transfer-Encoding: chunked\r\n\r\n")
            await send_until_answered(wire, chunked(forty_mb_prompt()))
    finally:
        wire.close()
    assert wire.status == 413, wire.received[:300]
    problem = wire.problem()
    assert problem["type"] == "https://picture.dev/problems/too-large"
    assert time.monotonic() - started < 20
    grown = rss_bytes(gateway) - before
    assert grown < 10 * 1024 * 1024, f"the gateway grew by {grown / 1e6:.0f} MB"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
async def test_a_large_body_without_a_valid_token_is_401_before_it_is_read(
    gateway: ManagedProcess, authorization: str | None
) -> None:
    wire = await Wire.open(gateway)
    head = b"POST /v1/generations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
    if authorization:
        head += b"Authorization: " + authorization.encode() + b"\r\n"
    started = time.monotonic()
    try:
        # the headers and a first few bytes; the rest of the 40 MB is never sent
        await wire.send(head + b"Content-Length: %d\r\n\r\n{" % FORTY_MB + b" " * 1000)
        while not (wire.answered or wire.closed) and time.monotonic() - started < 10:
            await wire.poll(0.2)
    finally:
        wire.close()
    assert wire.status == 401, wire.received[:300]
    assert wire.problem()["status"] == 401
    assert time.monotonic() - started < 3


async def test_headers_larger_than_64_kib_are_431(gateway: ManagedProcess) -> None:
    wire = await Wire.open(gateway)
    try:
        await wire.send(
            b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n"
        )
        started = time.monotonic()
        while not (wire.answered or wire.closed) and time.monotonic() - started < 5:
            await wire.poll(0.2)
    finally:
        wire.close()
    assert wire.status == 431, wire.received[:300]
    assert wire.problem()["status"] == 431
