"""Live updates from JetStream: the GENERATION_UPDATED events of PICTURE_EVT.

Every stream to a client is an ordered ephemeral consumer filtered to one subject (one
generation, or all of a user's generations), starting at a given stream sequence. The stream
sequence is the SSE event id, so ``Last-Event-ID`` resumes exactly after the last event seen.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from picture.common import contracts as c
from picture.gateway.schemas import GenerationOut

PROGRESS = {
    c.GenerationStatus.PENDING: 0.0,
    c.GenerationStatus.QUEUED: 0.05,
    c.GenerationStatus.PROCESSING: 0.5,
    c.GenerationStatus.DOWNLOADING: 0.9,
    c.GenerationStatus.COMPLETED: 1.0,
    c.GenerationStatus.FAILED: 1.0,
    c.GenerationStatus.CANCELLED: 1.0,
}


def generation_subject(user_id: uuid.UUID, generation_id: uuid.UUID | str = "*") -> str:
    return c.GENERATION_UPDATED.subject(user_id=user_id, generation_id=generation_id)


def generation_payload(view: c.GenerationView, base_url: str) -> dict[str, Any]:
    body = GenerationOut.build(view, base_url).model_dump(mode="json")
    body["progress"] = PROGRESS[view.status]
    return body


def sse(data: dict[str, Any] | list[Any], *, event: str, id: int | None = None) -> bytes:
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


HEARTBEAT = b": keep-alive\n\n"


@dataclass(frozen=True)
class Update:
    seq: int
    generation: c.GenerationView


class NewestVersions:
    """The highest view version seen per generation: one stream never shows a state older than
    one it has shown (events of one generation can be published out of order by replicas)."""

    def __init__(self) -> None:
        self._seen: dict[uuid.UUID, int] = {}

    def is_newer(self, view: c.GenerationView) -> bool:
        seen = self._seen.get(view.id)
        if seen is not None and view.version <= seen:
            return False
        self._seen[view.id] = view.version
        return True


async def last_sequence(js: JetStreamContext) -> int:
    info = await js.stream_info(c.EVT_STREAM.name)
    return int(info.state.last_seq)


async def last_update(js: JetStreamContext, subject: str) -> Update | None:
    """The newest event on one subject (the current state, with its sequence), if any."""
    try:
        raw = await js.get_last_msg(c.EVT_STREAM.name, subject)
    except nats.js.errors.NotFoundError:
        return None
    if raw.data is None or raw.seq is None:
        return None
    envelope = c.Envelope.model_validate_json(raw.data)
    return Update(raw.seq, envelope.open(c.GenerationUpdatedEvent).generation)


class Follower:
    """An ordered consumer on ``subject`` from ``start_seq``; ``next`` waits up to a timeout."""

    def __init__(self, js: JetStreamContext, subject: str, start_seq: int) -> None:
        self._js = js
        self._subject = subject
        self._start = max(1, start_seq)
        self._sub: JetStreamContext.PushSubscription | None = None
        self.versions = NewestVersions()

    async def __aenter__(self) -> Follower:
        self._sub = await self._js.subscribe(
            self._subject,
            stream=c.EVT_STREAM.name,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._start),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def next(self, timeout: float) -> Update | None:  # noqa: ASYNC109 - a poll with a deadline
        assert self._sub is not None
        while True:
            try:
                msg = await self._sub.next_msg(timeout=timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                return None
            try:
                envelope = c.Envelope.model_validate_json(msg.data)
                generation = envelope.open(c.GenerationUpdatedEvent).generation
            except ValueError:
                continue  # not ours to understand (a newer schema): skip, do not break the stream
            if not self.versions.is_newer(generation):
                continue
            return Update(msg.metadata.sequence.stream, generation)


def _decode(seq: int, data: bytes) -> Update | None:
    try:
        return Update(seq, c.Envelope.model_validate_json(data).open(c.GenerationUpdatedEvent).generation)
    except ValueError:
        return None


class Listener:
    """One client stream fed by the :class:`Hub`: updates of one user (optionally one
    generation) with a stream sequence above ``after``."""

    def __init__(self, user_id: uuid.UUID, generation_id: uuid.UUID | None, after: int) -> None:
        self.user_id = user_id
        self.generation_id = generation_id
        self.after = after
        self.queue: asyncio.Queue[Update | None] = asyncio.Queue(maxsize=1000)
        self.versions = NewestVersions()

    def offer(self, update: Update) -> None:
        if update.seq <= self.after:
            return
        if self.generation_id is not None and update.generation.id != self.generation_id:
            return
        if not self.versions.is_newer(update.generation):
            return  # an older state than one this stream has shown (replicas raced)
        try:
            self.queue.put_nowait(update)
            self.after = update.seq
        except asyncio.QueueFull:
            self.queue = asyncio.Queue(maxsize=1)
            self.queue.put_nowait(None)  # too slow: the stream ends, the client resumes

    async def next(self, timeout: float) -> Update | None:  # noqa: ASYNC109 - a poll with a deadline
        try:
            update = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if update is None:
            raise ConnectionResetError("client too slow")
        return update


class Hub:
    """One ordered consumer per gateway process on every generation event, fanned out to the
    open streams in memory (a thousand streams cost one JetStream consumer, not a thousand).
    Streams that start before the hub did catch up with their own :class:`Follower`."""

    def __init__(self, js: JetStreamContext, recent: int = 10_000) -> None:
        self._js = js
        self._sub: JetStreamContext.PushSubscription | None = None
        self.first_seq = 0  # the hub sees every event with a sequence above this
        self.last_seq = 0  # the newest event it has seen
        self._listeners: dict[uuid.UUID, set[Listener]] = {}
        # The latest events, so a stream registering a little late misses nothing.
        self._recent: collections.deque[tuple[int, uuid.UUID, bytes]] = collections.deque(maxlen=recent)
        self._evicted_up_to = 0

    async def start(self) -> None:
        self.first_seq = self.last_seq = await last_sequence(self._js)
        self._sub = await self._js.subscribe(
            c.GENERATION_UPDATED.wildcard,
            stream=c.EVT_STREAM.name,
            ordered_consumer=True,
            cb=self._on_message,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.first_seq + 1
            ),
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_message(self, msg: Msg) -> None:
        tokens = msg.subject.split(".")
        try:
            user_id = uuid.UUID(tokens[3])
        except (IndexError, ValueError):
            return
        seq = msg.metadata.sequence.stream
        self.last_seq = max(self.last_seq, seq)
        if len(self._recent) == self._recent.maxlen:
            self._evicted_up_to = self._recent[0][0]
        self._recent.append((seq, user_id, msg.data))
        listeners = self._listeners.get(user_id)
        if not listeners:
            return
        update = _decode(seq, msg.data)
        if update is None:
            return
        for listener in list(listeners):
            listener.offer(update)

    def covers(self, start_seq: int) -> bool:
        return self._sub is not None and start_seq > max(self.first_seq, self._evicted_up_to)

    @contextlib.asynccontextmanager
    async def listen(
        self, user_id: uuid.UUID, generation_id: uuid.UUID | None, start_seq: int
    ) -> AsyncIterator[Listener]:
        listener = Listener(user_id, generation_id, start_seq - 1)
        # No await between the replay and the registration: nothing slips in between.
        for seq, owner, data in self._recent:
            if owner == user_id and seq >= start_seq:
                update = _decode(seq, data)
                if update is not None:
                    listener.offer(update)
        self._listeners.setdefault(user_id, set()).add(listener)
        try:
            yield listener
        finally:
            group = self._listeners.get(user_id)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[user_id]


@contextlib.asynccontextmanager
async def follow(
    hub: Hub | None,
    js: JetStreamContext,
    user_id: uuid.UUID,
    generation_id: uuid.UUID | None,
    start_seq: int,
) -> AsyncIterator[Listener | Follower]:
    """Updates from ``start_seq`` on: through the hub when it has them all, else a consumer."""
    if hub is not None and hub.covers(start_seq):
        async with hub.listen(user_id, generation_id, start_seq) as listener:
            yield listener
    else:
        async with Follower(js, generation_subject(user_id, generation_id or "*"), start_seq) as follower:
            yield follower


async def stream_position(hub: Hub | None, js: JetStreamContext) -> int:
    """The newest event sequence now; take it before reading a state, and follow from it
    afterwards: nothing that happens in between is missed."""
    if hub is not None and hub.covers(hub.last_seq + 1):
        return hub.last_seq
    return await last_sequence(js)


async def wait_terminal(
    hub: Hub | None,
    js: JetStreamContext,
    view: c.GenerationView,
    seconds: float,
    position: int,
) -> c.GenerationView:
    """``view`` once it is terminal, or its newest state when ``seconds`` have passed
    (``Prefer: wait``). ``position``: :func:`stream_position` taken before ``view`` was read."""
    if view.status.is_terminal or seconds <= 0:
        return view
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with follow(hub, js, view.user_id, view.id, position + 1) as follower:
        while (remaining := deadline - loop.time()) > 0:
            update = await follower.next(remaining)
            if update is None:
                break
            if update.generation.version > view.version:
                view = update.generation
            if view.status.is_terminal:
                break
    return view
