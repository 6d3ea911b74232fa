"""Streams and subjects, and the typed endpoints bound to them: a :class:`Channel` (a JetStream
subject and its message type) and a :class:`Query` (request/reply)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from picture.common.contracts.messages import M, R

__all__ = [
    "CMD_STREAM",
    "DLQ_STREAM",
    "DLQ_SUBJECT_PREFIX",
    "EVT_STREAM",
    "STREAMS",
    "SUBJECT_PREFIX",
    "Channel",
    "Query",
    "StreamSpec",
]

# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------

SUBJECT_PREFIX = "picture"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    work_queue: bool
    max_age_seconds: float
    duplicate_window_seconds: float = 120.0


CMD_STREAM = StreamSpec("PICTURE_CMD", ("picture.cmd.>",), work_queue=True, max_age_seconds=7 * 86400)
EVT_STREAM = StreamSpec("PICTURE_EVT", ("picture.evt.>",), work_queue=False, max_age_seconds=3 * 86400)
# Dead letters: a consumer publishes the envelope of a message that failed its last allowed
# delivery (or could not be decoded) to picture.dlq.<original subject without "picture.">, with
# headers Picture-Original-Subject, Picture-Consumer, Picture-Error, Picture-Num-Delivered.
# Kept 14 days for inspection and replay by an operator.
DLQ_STREAM = StreamSpec("PICTURE_DLQ", ("picture.dlq.>",), work_queue=False, max_age_seconds=14 * 86400)
DLQ_SUBJECT_PREFIX = "picture.dlq"
STREAMS: tuple[StreamSpec, ...] = (CMD_STREAM, EVT_STREAM, DLQ_STREAM)

# --------------------------------------------------------------------------------------------
# Channels and queries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel(Generic[M]):
    """A JetStream subject (or subject family) and the one message type it carries."""

    subject_pattern: str  # with {placeholders} for per-entity tokens
    message_type: type[M]

    def subject(self, **tokens: object) -> str:
        return self.subject_pattern.format(**{k: str(v) for k, v in tokens.items()})

    @property
    def wildcard(self) -> str:
        """The subject filter matching every subject of this channel."""
        parts = [("*" if p.startswith("{") else p) for p in self.subject_pattern.split(".")]
        return ".".join(parts)


@dataclass(frozen=True)
class Query(Generic[M, R]):
    """A request/reply endpoint: request type, reply type, subject."""

    subject: str
    request_type: type[M]
    reply_type: type[R]
