"""Live updates from JetStream: the GENERATION_UPDATED events of PICTURE_EVT.

Every stream to a client is an ordered ephemeral consumer filtered to one subject (one
generation, or all of a user's generations), starting at a given stream sequence. The stream
sequence is the SSE event id, so ``Last-Event-ID`` resumes exactly after the last event seen.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
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
            return Update(msg.metadata.sequence.stream, generation)
