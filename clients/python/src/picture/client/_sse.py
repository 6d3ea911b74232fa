"""A small Server-Sent Events parser (the text/event-stream format of the WHATWG spec)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None


class _Decoder:
    def __init__(self) -> None:
        self.event = ""
        self.data: list[str] = []
        self.last_id: str | None = None

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self.data:
                self.event = ""
                return None
            out = Event(self.event or "message", "\n".join(self.data), self.last_id)
            self.event, self.data = "", []
            return out
        if line.startswith(":"):
            return None  # comment (heartbeat)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None


def iter_events(lines: Iterable[str]) -> Iterator[Event]:
    decoder = _Decoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event


async def aiter_events(lines: AsyncIterable[str]) -> AsyncIterator[Event]:
    decoder = _Decoder()
    async for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
