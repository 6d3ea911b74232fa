"""Streams and subjects, and the typed endpoints bound to them: a :class:`Channel` (a JetStream
subject and its message type) and a :class:`Query` (request/reply); the durable consumers and
their settings (:class:`ConsumerSpec`), declared once for the services, the devstack and the
deploy checks (why each number: docs/scaling.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from picture.common.contracts.messages import M, R

__all__ = [
    "ADAPTER_ACCOUNTS",
    "ADAPTER_COMMANDS",
    "ADAPTER_WEBHOOKS",
    "CATALOG_ACCOUNTS",
    "CATALOG_COMMANDS",
    "CMD_STREAM",
    "CONSUMERS",
    "DLQ_STREAM",
    "DLQ_SUBJECT_PREFIX",
    "EVT_STREAM",
    "GATEWAY_QUOTA",
    "GATEWAY_WEBHOOKS",
    "MEDIA_ACCOUNTS",
    "MEDIA_COMMANDS",
    "ORCHESTRATOR_ACCOUNTS",
    "ORCHESTRATOR_CREATE",
    "ORCHESTRATOR_EVENTS",
    "PRODUCTION_STREAM_REPLICAS",
    "STREAMS",
    "SUBJECT_PREFIX",
    "Channel",
    "ConsumerSpec",
    "Query",
    "StreamSpec",
    "stream_replicas_for",
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

# Every stream (and every durable consumer, which inherits its stream's count) is kept on this
# many JetStream servers in production: a quorum of 2 out of 3 survives losing any one node.
PRODUCTION_STREAM_REPLICAS = 3


def stream_replicas_for(nodes: int) -> int:
    """Stream replicas on a JetStream of ``nodes`` servers: 3 from three nodes on; else 1 (two
    replicas on two nodes need both for a quorum, so they add a failure, not a spare)."""
    return PRODUCTION_STREAM_REPLICAS if nodes >= PRODUCTION_STREAM_REPLICAS else 1


# --------------------------------------------------------------------------------------------
# Durable consumers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer shared by every replica of its service.

    ``ack_wait_seconds``: how long one delivery may stay unacknowledged before JetStream hands
    it to another replica (a killed replica's messages come back after this); handlers that run
    longer report progress. ``max_deliver``: deliveries before the message is dead-lettered.
    ``max_ack_pending``: unacknowledged messages across all replicas together (the consumer's
    back-pressure). ``scale_lag``: pending messages per replica the autoscaler aims at (KEDA's
    lagThreshold); None where the service scales on CPU.
    """

    durable: str
    stream: StreamSpec
    ack_wait_seconds: float
    max_deliver: int
    max_ack_pending: int = 1000
    scale_lag: int | None = None


ORCHESTRATOR_CREATE = ConsumerSpec("orchestrator-create", CMD_STREAM, ack_wait_seconds=30, max_deliver=50)
ORCHESTRATOR_EVENTS = ConsumerSpec(
    "orchestrator-events", EVT_STREAM, ack_wait_seconds=30, max_deliver=50, scale_lag=100
)
# A create may take the adapter's whole Replicate timeout (30 s by default) plus the database.
ADAPTER_COMMANDS = ConsumerSpec(
    "adapter-commands", CMD_STREAM, ack_wait_seconds=60, max_deliver=8, scale_lag=20
)
ADAPTER_WEBHOOKS = ConsumerSpec("adapter-webhooks", CMD_STREAM, ack_wait_seconds=30, max_deliver=6)
MEDIA_COMMANDS = ConsumerSpec("media-commands", CMD_STREAM, ack_wait_seconds=60, max_deliver=10, scale_lag=10)
CATALOG_COMMANDS = ConsumerSpec("catalog-commands", CMD_STREAM, ack_wait_seconds=30, max_deliver=20)
# The durable's first job gave it its name (it also feeds the read model); deployed streams keep it.
GATEWAY_QUOTA = ConsumerSpec("gateway-quota", EVT_STREAM, ack_wait_seconds=30, max_deliver=10)
# Client webhooks: the gateway's settings lengthen the ack wait to its delivery timeout + 20 s.
GATEWAY_WEBHOOKS = ConsumerSpec("gateway-webhooks", EVT_STREAM, ack_wait_seconds=30, max_deliver=10)
# An account's deletion: each owner deletes its own rows (media its files too: longer).
CATALOG_ACCOUNTS = ConsumerSpec("catalog-accounts", EVT_STREAM, ack_wait_seconds=60, max_deliver=20)
ORCHESTRATOR_ACCOUNTS = ConsumerSpec("orchestrator-accounts", EVT_STREAM, ack_wait_seconds=60, max_deliver=20)
MEDIA_ACCOUNTS = ConsumerSpec("media-accounts", EVT_STREAM, ack_wait_seconds=120, max_deliver=20)
ADAPTER_ACCOUNTS = ConsumerSpec("replicate-adapter-accounts", EVT_STREAM, ack_wait_seconds=60, max_deliver=20)
CONSUMERS: tuple[ConsumerSpec, ...] = (
    ORCHESTRATOR_CREATE,
    ORCHESTRATOR_EVENTS,
    ADAPTER_COMMANDS,
    ADAPTER_WEBHOOKS,
    MEDIA_COMMANDS,
    CATALOG_COMMANDS,
    GATEWAY_QUOTA,
    GATEWAY_WEBHOOKS,
    CATALOG_ACCOUNTS,
    ORCHESTRATOR_ACCOUNTS,
    MEDIA_ACCOUNTS,
    ADAPTER_ACCOUNTS,
)

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
