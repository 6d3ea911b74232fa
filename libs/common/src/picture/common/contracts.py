"""The contracts between services: every subject, stream and message, declared once.

Three kinds of traffic, one prefix (``picture.``):

- commands (``picture.cmd.<service>.<verb>``): one consumer each, work-queue stream CMD;
- events (``picture.evt.<topic>...``): fan out to any number of consumers, stream EVT
  (limits retention, a few days);
- queries (``picture.q.<service>.<verb>``): NATS request/reply, typed reply or typed error.

Every message is a pydantic model. On the wire it travels in an :class:`Envelope`
(id, type, schema_version, occurred_at, data); the envelope id is also the Nats-Msg-Id,
so JetStream drops duplicates inside its window, and consumers dedupe past it.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from picture.common.ids import uuid7

# --------------------------------------------------------------------------------------------
# Envelope and message base
# --------------------------------------------------------------------------------------------


class Message(BaseModel):
    """Base of every message body. ``TYPE`` names it on the wire; bump ``SCHEMA_VERSION``
    on a breaking change (consumers refuse versions newer than they know)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)


class Envelope(BaseModel):
    """What travels on NATS around every message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(default_factory=uuid7)
    type: str
    schema_version: int
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any]

    @classmethod
    def wrap(cls, message: Message, *, id: uuid.UUID | None = None) -> Envelope:
        return cls(
            id=id or uuid7(),
            type=message.TYPE,
            schema_version=message.SCHEMA_VERSION,
            data=message.model_dump(mode="json"),
        )

    def open(self, message_type: builtins.type[M]) -> M:
        if self.type != message_type.TYPE:
            raise ValueError(f"expected message type {message_type.TYPE}, got {self.type}")
        if self.schema_version > message_type.SCHEMA_VERSION:
            raise ValueError(
                f"{self.type} schema version {self.schema_version} is newer than "
                f"{message_type.SCHEMA_VERSION}"
            )
        return message_type.model_validate(self.data)


# --------------------------------------------------------------------------------------------
# Streams and subjects
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
STREAMS: tuple[StreamSpec, ...] = (CMD_STREAM, EVT_STREAM)


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


# --------------------------------------------------------------------------------------------
# Shared value types
# --------------------------------------------------------------------------------------------


class GenerationStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED}
)


class ErrorKind(StrEnum):
    """Whether retrying can help."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ErrorKind
    code: str  # stable machine-readable reason, e.g. "prediction_failed", "download_failed"
    message: str  # readable by an end user
    details: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(BaseModel):
    """The catalog's model record, as other services need it (snapshotted per generation, so
    a generation runs with the definition it was accepted under)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    display_name: str
    replicate_id: str  # "owner/name"
    version: str | None = None  # None: official model endpoint
    description: str = ""
    default_width: int = 1024
    default_height: int = 1024
    min_width: int = 256
    max_width: int = 2048
    min_height: int = 256
    max_height: int = 2048
    default_steps: int | None = None
    max_steps: int = 50
    default_guidance_scale: float | None = None
    supports_negative_prompt: bool = False
    supports_seed: bool = True
    supports_img2img: bool = False
    supported_aspect_ratios: tuple[str, ...] = ()
    cost_per_generation: float = 0.0
    estimated_time_seconds: float = 10.0
    is_active: bool = True
    is_default: bool = False
    sort_order: int = 0


class GenerationParameters(BaseModel):
    """What the user asked for, validated and with model defaults applied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str
    negative_prompt: str | None = None
    width: int
    height: int
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None


class StoredObject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    role: Literal["original", "thumbnail"]
    content_type: str
    size: int
    width: int
    height: int
    sha256: str


class ImageView(BaseModel):
    """An image as the public API shows it (url filled in by the gateway)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    generation_id: uuid.UUID | None
    user_id: uuid.UUID
    width: int
    height: int
    format: str
    file_size: int
    content_key: str
    thumbnail_key: str | None = None
    is_public: bool = False
    created_at: datetime


class GenerationView(BaseModel):
    """A generation as the orchestrator reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    status: GenerationStatus
    model: str
    parameters: GenerationParameters
    error_message: str | None = None
    retry_count: int = 0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    queue_time_ms: int | None = None
    processing_time_ms: int | None = None
    total_time_ms: int | None = None
    image: ImageView | None = None
    history: tuple[StatusChange, ...] = ()


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: GenerationStatus
    at: datetime
    reason: str | None = None


GenerationView.model_rebuild()

# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


class PredictCommand(Message):
    TYPE: ClassVar[str] = "adapter.predict"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    model: ModelSpec
    parameters: GenerationParameters
    deadline: datetime | None = None


class CancelPredictionCommand(Message):
    TYPE: ClassVar[str] = "adapter.cancel"

    generation_id: uuid.UUID
    attempt: int


class IngestCommand(Message):
    TYPE: ClassVar[str] = "media.ingest"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    source_urls: tuple[str, ...]
    max_long_side: int = 2048


class RecordImageCommand(Message):
    TYPE: ClassVar[str] = "catalog.record_image"

    image_id: uuid.UUID
    generation_id: uuid.UUID
    user_id: uuid.UUID
    model: str
    prompt: str
    negative_prompt: str | None
    seed: int | None
    objects: tuple[StoredObject, ...]


class DeleteObjectsCommand(Message):
    TYPE: ClassVar[str] = "media.delete"

    keys: tuple[str, ...]


PREDICT = Channel("picture.cmd.adapter.predict", PredictCommand)
CANCEL_PREDICTION = Channel("picture.cmd.adapter.cancel", CancelPredictionCommand)
INGEST = Channel("picture.cmd.media.ingest", IngestCommand)
DELETE_OBJECTS = Channel("picture.cmd.media.delete", DeleteObjectsCommand)
RECORD_IMAGE = Channel("picture.cmd.catalog.record_image", RecordImageCommand)

# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


class PredictionStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class PredictionEvent(Message):
    """The adapter's report on a prediction: started, or a terminal outcome."""

    TYPE: ClassVar[str] = "prediction.updated"

    generation_id: uuid.UUID
    attempt: int
    prediction_id: str | None
    status: PredictionStatus
    output_urls: tuple[str, ...] = ()
    error: ErrorInfo | None = None
    predict_time_seconds: float | None = None
    cost_usd: float | None = None


class MediaStoredEvent(Message):
    TYPE: ClassVar[str] = "media.stored"

    generation_id: uuid.UUID
    attempt: int
    objects: tuple[StoredObject, ...]


class MediaFailedEvent(Message):
    TYPE: ClassVar[str] = "media.failed"

    generation_id: uuid.UUID
    attempt: int
    error: ErrorInfo


class ImageCreatedEvent(Message):
    TYPE: ClassVar[str] = "image.created"

    image_id: uuid.UUID
    generation_id: uuid.UUID
    user_id: uuid.UUID


class GenerationUpdatedEvent(Message):
    """Every status change of a generation; the event clients follow."""

    TYPE: ClassVar[str] = "generation.updated"

    generation: GenerationView


PREDICTION_UPDATED = Channel("picture.evt.prediction.{generation_id}", PredictionEvent)
MEDIA_STORED = Channel("picture.evt.media.stored.{generation_id}", MediaStoredEvent)
MEDIA_FAILED = Channel("picture.evt.media.failed.{generation_id}", MediaFailedEvent)
IMAGE_CREATED = Channel("picture.evt.image.created.{generation_id}", ImageCreatedEvent)
GENERATION_UPDATED = Channel("picture.evt.generation.{user_id}.{generation_id}", GenerationUpdatedEvent)

# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------


class QueryErrorCode(StrEnum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class QueryError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: QueryErrorCode
    message: str
    field: str | None = None


class QueryReply(BaseModel):
    """The reply frame of every query: either ``data`` or ``error``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    data: dict[str, Any] | None = None
    error: QueryError | None = None


class CreateGenerationRequest(Message):
    TYPE: ClassVar[str] = "orchestrator.create_generation"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    model: ModelSpec
    parameters: GenerationParameters


class GetGenerationRequest(Message):
    TYPE: ClassVar[str] = "orchestrator.get_generation"

    generation_id: uuid.UUID
    user_id: uuid.UUID


class GenerationReply(Message):
    TYPE: ClassVar[str] = "orchestrator.generation"

    generation: GenerationView


class GetModelRequest(Message):
    TYPE: ClassVar[str] = "catalog.get_model"

    name: str


class ModelReply(Message):
    TYPE: ClassVar[str] = "catalog.model"

    model: ModelSpec


class ListModelsRequest(Message):
    TYPE: ClassVar[str] = "catalog.list_models"

    include_inactive: bool = False


class ModelListReply(Message):
    TYPE: ClassVar[str] = "catalog.models"

    models: tuple[ModelSpec, ...]


class GetImageRequest(Message):
    TYPE: ClassVar[str] = "catalog.get_image"

    image_id: uuid.UUID
    viewer_id: uuid.UUID | None  # None: anonymous viewer, public images only


class ImageReply(Message):
    TYPE: ClassVar[str] = "catalog.image"

    image: ImageView


class ResolveObjectRequest(Message):
    TYPE: ClassVar[str] = "media.resolve_object"

    key: str
    expires_in_seconds: int = 300


class ResolvedObject(Message):
    """Where to fetch an object's bytes: a short-lived signed URL (redirect the client) or
    an internal URL of the media service (the gateway streams it)."""

    TYPE: ClassVar[str] = "media.resolved_object"

    url: str
    disposition: Literal["redirect", "proxy"]
    content_type: str
    size: int
    etag: str


CREATE_GENERATION = Query(
    "picture.q.orchestrator.create_generation", CreateGenerationRequest, GenerationReply
)
GET_GENERATION = Query("picture.q.orchestrator.get_generation", GetGenerationRequest, GenerationReply)
GET_MODEL = Query("picture.q.catalog.get_model", GetModelRequest, ModelReply)
LIST_MODELS = Query("picture.q.catalog.list_models", ListModelsRequest, ModelListReply)
GET_IMAGE = Query("picture.q.catalog.get_image", GetImageRequest, ImageReply)
RESOLVE_OBJECT = Query("picture.q.media.resolve_object", ResolveObjectRequest, ResolvedObject)
