"""What a service accepts on the wire before any route runs: time and size bounds on requests.

- :func:`deadline_protocol`: uvicorn's HTTP protocol (httptools) with two deadlines per
  request. The headers must be complete within ``header_timeout`` of the request's first byte
  (or of the connection's opening: a connection that sends nothing is closed too), and a
  declared body within ``body_timeout`` of the end of the headers. A late request is answered
  408 (problem+json) and the connection closed: a slow client (slowloris) holds a connection
  for a bounded time, whatever it trickles. The request line and headers are capped in size
  too (431).
- :class:`BodySizeLimit`: a request body larger than its route's cap is refused with 413
  before it is read (by its Content-Length) or as soon as the cap is passed (chunked bodies).

An early answer does not close the connection: what the client still sends of its body is
discarded as it arrives (never buffered), within the body deadline. Closing at once would make
the kernel reset the connection over the unread bytes, and a client busy sending would lose
the answer with it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from picture.common.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE, problem_response

# The request line and headers together (httptools itself does not bound them).
MAX_HEADER_BYTES = 64 * 1024


def _raw_problem(status: int, slug: str, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 problem+json response that closes the connection, as bytes (written
    by the protocol itself, outside any ASGI app)."""
    body = json.dumps(
        {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"content-type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def declares_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether request headers (lower-case names) announce a body."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def request_header(scope: Scope, name: bytes) -> str | None:
    """A request header of an ASGI scope (the first of that name, lower-case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class _DeadlineProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float]
    body_timeout: ClassVar[float]
    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES

    _deadline: asyncio.TimerHandle | None = None
    _in_headers = False
    _header_bytes = 0

    def _arm(self, seconds: float, expired: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        if self._deadline is None:  # a new request on a kept-alive connection
            self._arm(self.header_timeout, self._headers_late)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
            self.transport.write(
                _raw_problem(
                    431,
                    "headers-too-large",
                    "Request headers too large",
                    "the request line and headers are too long",
                )
            )
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_headers = False
        if self.transport.is_closing():  # refused already (headers too large): no app call
            return
        super().on_headers_complete()
        if declares_body(self.headers):
            self._arm(self.body_timeout, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # answered before the body ended (the rest was discarded): the connection is idle
            # now, and uvicorn's keep-alive timer was disarmed by the body's arrival
            self._arm(self.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_headers:
            self.transport.write(
                _raw_problem(408, "request-timeout", "Request timeout", "the request headers came too slowly")
            )
        self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not cycle.response_started:
                self.transport.write(
                    _raw_problem(
                        408, "request-timeout", "Request timeout", "the request body came too slowly"
                    )
                )
            # the app sees a disconnect; whatever it sends from now on is dropped
            cycle.response_started = cycle.response_complete = cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def deadline_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with these deadlines (pass it as ``uvicorn.Config(http=...)``)."""
    return type(
        "DeadlineHttpToolsProtocol",
        (_DeadlineProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )


class BodySizeLimit:
    """413 for a request body over its route's cap: ``caps`` by exact path, ``default_cap``
    for every other path. Pure ASGI: nothing is read before the decision."""

    def __init__(self, app: ASGIApp, *, default_cap: int, caps: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default_cap = default_cap
        self.caps = dict(caps or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.caps.get(scope["path"], self.default_cap)
        declared = request_header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _too_large(scope, receive, send, cap)
            return
        received = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    refused = True
                    await _too_large(scope, receive, send, cap)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after our 413, the app's own answer goes nowhere
                await send(message)

        await self.app(scope, counted_receive, guarded_send)


async def _too_large(scope: Scope, receive: Receive, send: Send, cap: int) -> None:
    response = problem_response(
        None,
        413,
        "too-large",
        "Request too large",
        f"the request body may be at most {cap} bytes",
        field="body",
    )
    await response(scope, receive, send)
