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
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from picture.common.ids import uuid7
from picture.common.text import Storable, UnstorableText, unstorable_path

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

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Parse an envelope received from the bus. Text PostgreSQL cannot store is refused
        (:class:`UnstorableText` naming the field): only NUL can arrive, as a ``\\u0000``
        escape (JSON parsing refuses unpaired surrogates), so the payload is searched only then."""
        envelope = cls.model_validate_json(raw)
        if b"\\u0000" in raw:
            where = unstorable_path(envelope.data)
            if where is not None:
                raise UnstorableText(where, "text must not contain the NUL character (U+0000)")
        return envelope

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
# Dead letters (observability, issue #8): a consumer publishes the envelope of a message that
# failed its last allowed delivery (or could not be decoded) to picture.dlq.<original subject
# without "picture.">, with headers Picture-Original-Subject, Picture-Consumer, Picture-Error,
# Picture-Num-Delivered. Kept 14 days for inspection and replay by an operator.
DLQ_STREAM = StreamSpec("PICTURE_DLQ", ("picture.dlq.>",), work_queue=False, max_age_seconds=14 * 86400)
DLQ_SUBJECT_PREFIX = "picture.dlq"
STREAMS: tuple[StreamSpec, ...] = (CMD_STREAM, EVT_STREAM, DLQ_STREAM)


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
    # Image-to-image strength (issue #7: the old product's model fields); None: the model's own.
    default_strength: float | None = None
    strength_min: float = 0.0
    strength_max: float = 1.0
    # What the model's Replicate input takes: steps, guidance (within its range), a strength
    # with the source image, seeds up to max_seed.
    supports_steps: bool = True
    supports_guidance: bool = True
    guidance_min: float = 0.0
    guidance_max: float = 50.0
    supports_strength: bool = True
    max_seed: int = 2**32 - 1
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
    # img2img (issue #3): a data: URI or a signed https URL, and how far to move from it
    # (0 = keep the source, 1 = ignore it); the adapter maps it per model.
    source_image_url: str | None = None
    strength: float | None = None


class StoredObject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    # "preview": the rasterised WebP of a vector (SVG) original (issue #6).
    role: Literal["original", "thumbnail", "preview"]
    content_type: str
    size: int
    width: int
    height: int
    sha256: str
    blurhash: str | None = None  # a compact placeholder of the picture (issue #6)


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
    # Orchestrator scheduling (issue #4): where a waiting generation stands, and its batch.
    queue_position: int | None = None  # 1 = next to be dispatched; None when not waiting
    eta_seconds: float | None = None  # rough time until it starts, when waiting
    batch_id: uuid.UUID | None = None
    batch_index: int | None = None
    priority: int = 0
    # Grows with every change the orchestrator announces: a reader keeps the highest it has
    # seen, so a late or redelivered event never turns a view back. 0: accepted, not yet queued.
    version: int = 0


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
    # Provenance written into the stored WebP (issue #6); None: not known.
    model: str | None = None
    prompt: str | None = None
    seed: int | None = None


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


class CreateGenerationCommand(Message):
    """A generation the gateway accepted (quota charged, id given to the client): the
    orchestrator writes it and queues it. Idempotent by ``generation_id``."""

    TYPE: ClassVar[str] = "orchestrator.create"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    model: ModelSpec
    parameters: GenerationParameters
    reuse: bool = True  # an identical seeded request recently completed may reuse its image
    priority: int = 0  # higher is dispatched first
    accepted_at: datetime  # the generation's creation time, as the client was told


CREATE_GENERATION = Channel("picture.cmd.orchestrator.create", CreateGenerationCommand)


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


GET_GENERATION = Query("picture.q.orchestrator.get_generation", GetGenerationRequest, GenerationReply)
GET_MODEL = Query("picture.q.catalog.get_model", GetModelRequest, ModelReply)
LIST_MODELS = Query("picture.q.catalog.list_models", ListModelsRequest, ModelListReply)
GET_IMAGE = Query("picture.q.catalog.get_image", GetImageRequest, ImageReply)
RESOLVE_OBJECT = Query("picture.q.media.resolve_object", ResolveObjectRequest, ResolvedObject)


# --------------------------------------------------------------------------------------------
# Orchestrator: cancel, lists, batches, error statistics (issue #4)
# --------------------------------------------------------------------------------------------


class CancelGenerationRequest(Message):
    TYPE: ClassVar[str] = "orchestrator.cancel_generation"

    generation_id: uuid.UUID
    user_id: uuid.UUID


class ListGenerationsRequest(Message):
    """Newest first; ``cursor`` is the opaque ``next_cursor`` of the previous page."""

    TYPE: ClassVar[str] = "orchestrator.list_generations"

    user_id: uuid.UUID
    status: GenerationStatus | None = None
    batch_id: uuid.UUID | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class GenerationListReply(Message):
    TYPE: ClassVar[str] = "orchestrator.generations"

    generations: tuple[GenerationView, ...]
    next_cursor: str | None = None


class BatchStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"


class BatchItemSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generation_id: uuid.UUID
    parameters: GenerationParameters


class CreateBatchRequest(Message):
    TYPE: ClassVar[str] = "orchestrator.create_batch"

    batch_id: uuid.UUID
    user_id: uuid.UUID
    name: str | None = None
    kind: Literal["batch", "multi"] = "batch"
    model: ModelSpec
    items: tuple[BatchItemSpec, ...] = Field(min_length=1, max_length=10)
    reuse: bool = True
    priority: int = 0


class BatchItemView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generation_id: uuid.UUID
    index: int
    prompt: str
    seed: int | None
    status: GenerationStatus
    progress: float  # 0..1, by stage
    error_message: str | None = None
    image: ImageView | None = None


class BatchView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str | None
    kind: Literal["batch", "multi"]
    model: str
    status: BatchStatus
    total: int
    completed: int
    failed: int
    pending: int
    processing: int
    created_at: datetime
    items: tuple[BatchItemView, ...] = ()


class BatchRequest(Message):
    """Get, cancel (pending/running items), retry its failed items, or delete a batch."""

    TYPE: ClassVar[str] = "orchestrator.batch"

    batch_id: uuid.UUID
    user_id: uuid.UUID
    # Retry only: ids for the new generations, in item order, already charged by the gateway
    # (ids it does not use come back unused in the reply's items and are refunded).
    new_generation_ids: tuple[uuid.UUID, ...] = ()


class BatchReply(Message):
    TYPE: ClassVar[str] = "orchestrator.batch_reply"

    batch: BatchView


class ListBatchesRequest(Message):
    TYPE: ClassVar[str] = "orchestrator.list_batches"

    user_id: uuid.UUID
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class BatchListReply(Message):
    TYPE: ClassVar[str] = "orchestrator.batches"

    batches: tuple[BatchView, ...]
    next_cursor: str | None = None


class ErrorStatsRequest(Message):
    """Error counts by day, model, error type and kind; for one user, or all (user_id None)."""

    TYPE: ClassVar[str] = "orchestrator.error_stats"

    user_id: uuid.UUID | None = None
    since: datetime | None = None  # default: 7 days ago
    until: datetime | None = None  # default: now


class ErrorStatsRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    day: str  # YYYY-MM-DD (UTC)
    model: str
    error_type: str
    error_kind: ErrorKind
    count: int


class ErrorStatsReply(Message):
    TYPE: ClassVar[str] = "orchestrator.error_stats_reply"

    since: datetime
    until: datetime
    total: int
    rows: tuple[ErrorStatsRow, ...]


CANCEL_GENERATION = Query(
    "picture.q.orchestrator.cancel_generation", CancelGenerationRequest, GenerationReply
)
LIST_GENERATIONS = Query(
    "picture.q.orchestrator.list_generations", ListGenerationsRequest, GenerationListReply
)
CREATE_BATCH = Query("picture.q.orchestrator.create_batch", CreateBatchRequest, BatchReply)
GET_BATCH = Query("picture.q.orchestrator.get_batch", BatchRequest, BatchReply)
LIST_BATCHES = Query("picture.q.orchestrator.list_batches", ListBatchesRequest, BatchListReply)
CANCEL_BATCH = Query("picture.q.orchestrator.cancel_batch", BatchRequest, BatchReply)
RETRY_BATCH = Query("picture.q.orchestrator.retry_batch", BatchRequest, BatchReply)
DELETE_BATCH = Query("picture.q.orchestrator.delete_batch", BatchRequest, BatchReply)
ERROR_STATS = Query("picture.q.orchestrator.error_stats", ErrorStatsRequest, ErrorStatsReply)


# --------------------------------------------------------------------------------------------
# Replicate adapter: webhooks and cost totals (issue #3)
# --------------------------------------------------------------------------------------------


class ReplicateWebhookCommand(Message):
    """A Replicate webhook the gateway verified (signature, timestamp, replay), handed to the
    adapter: ``prediction`` is the webhook's JSON body (a prediction object) as received."""

    TYPE: ClassVar[str] = "adapter.webhook"

    webhook_id: str
    prediction: dict[str, Any]
    received_at: datetime
    # The attempt named in the webhook URL's query (the adapter puts it there when creating):
    # Replicate calls back that exact URL, so this says whose prediction it is.
    generation_id: uuid.UUID | None = None
    attempt: int | None = None


class CostTotalsRequest(Message):
    """Cost of predictions per UTC day and model (and user, when ``user_id`` is given) over
    the last ``days`` days, today included."""

    TYPE: ClassVar[str] = "adapter.cost_totals"

    days: int = Field(default=7, ge=1, le=366)
    user_id: uuid.UUID | None = None


class CostTotalsRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    day: str  # YYYY-MM-DD (UTC)
    model: str
    user_id: uuid.UUID | None = None
    predictions: int
    cost_usd: float


class CostTotalsReply(Message):
    TYPE: ClassVar[str] = "adapter.cost_totals_reply"

    rows: tuple[CostTotalsRow, ...]
    total_usd: float


REPLICATE_WEBHOOK = Channel("picture.cmd.adapter.webhook", ReplicateWebhookCommand)
COST_TOTALS = Query("picture.q.adapter.cost_totals", CostTotalsRequest, CostTotalsReply)


# --------------------------------------------------------------------------------------------
# Media: uploads (issue #6)
# --------------------------------------------------------------------------------------------


class RecordUploadRequest(Message):
    """Create the catalog record of an uploaded (already stored) image; the reply is the image.

    A request, not a command: media deletes the stored objects when this fails, so no object
    outlives a missing record and no record points at missing objects."""

    TYPE: ClassVar[str] = "catalog.record_upload"

    image_id: uuid.UUID
    user_id: uuid.UUID
    filename: str  # the client's file name, cleaned; shown, never used as a key
    objects: tuple[StoredObject, ...]


RECORD_UPLOAD = Query("picture.q.catalog.record_upload", RecordUploadRequest, ImageReply)


# --------------------------------------------------------------------------------------------
# Catalog: gallery, explore, tags, likes, profiles, prompt templates, admin models (issue #7)
# --------------------------------------------------------------------------------------------


class ImageDetail(BaseModel):
    """An image with everything the gallery and explore show (urls filled in by the gateway)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    generation_id: uuid.UUID | None
    width: int
    height: int
    format: str
    file_size: int
    content_key: str
    thumbnail_key: str | None = None
    prompt: str
    negative_prompt: str | None = None
    model: str | None = None
    seed: int | None = None
    is_public: bool = False
    is_favorite: bool = False
    rating: int | None = None
    download_count: int = 0
    like_count: int = 0
    archived_at: datetime | None = None
    created_at: datetime
    tags: tuple[str, ...] = ()
    author_username: str | None = None
    author_avatar_url: str | None = None


class ListImagesRequest(Message):
    """The owner's gallery, newest first; ``tags``: the image must carry every one."""

    TYPE: ClassVar[str] = "catalog.list_images"

    user_id: uuid.UUID
    archived: bool = False
    favorite: bool | None = None
    tags: tuple[str, ...] = Field(default=(), max_length=10)
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class ExploreRequest(Message):
    """Public, non-archived images of everyone; ``q``: full-text search in prompts."""

    TYPE: ClassVar[str] = "catalog.explore"

    sort: Literal["recent", "popular"] = "recent"
    q: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class ImageListReply(Message):
    TYPE: ClassVar[str] = "catalog.images"

    images: tuple[ImageDetail, ...]
    next_cursor: str | None = None


class GetImageDetailRequest(Message):
    TYPE: ClassVar[str] = "catalog.get_image_detail"

    image_id: uuid.UUID
    viewer_id: uuid.UUID | None


class UpdateImageRequest(Message):
    """Owner-only changes; a field left None is not changed."""

    TYPE: ClassVar[str] = "catalog.update_image"

    image_id: uuid.UUID
    user_id: uuid.UUID
    is_public: bool | None = None
    is_favorite: bool | None = None
    rating: int | None = Field(default=None, ge=0, le=5)
    clear_rating: bool = False
    archived: bool | None = None


class ImageDetailReply(Message):
    TYPE: ClassVar[str] = "catalog.image_detail"

    image: ImageDetail


class BulkImagesRequest(Message):
    """Archive, restore or delete the owner's images by id (others' ids are ignored)."""

    TYPE: ClassVar[str] = "catalog.bulk_images"

    user_id: uuid.UUID
    action: Literal["archive", "restore", "delete"]
    ids: tuple[uuid.UUID, ...] = Field(min_length=1, max_length=100)


class BulkImagesReply(Message):
    TYPE: ClassVar[str] = "catalog.bulk_images_reply"

    affected: tuple[uuid.UUID, ...]


class ImageTagRequest(Message):
    """Add (``add``) or remove a shared tag on the owner's image."""

    TYPE: ClassVar[str] = "catalog.image_tag"

    image_id: uuid.UUID
    user_id: uuid.UUID
    name: str = Field(min_length=1, max_length=50)
    add: bool = True


class LikeRequest(Message):
    TYPE: ClassVar[str] = "catalog.like"

    image_id: uuid.UUID
    user_id: uuid.UUID
    like: bool = True


class LikeReply(Message):
    TYPE: ClassVar[str] = "catalog.like_reply"

    image_id: uuid.UUID
    liked: bool
    like_count: int


class TagView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    color: str
    created_at: datetime


class ListTagsRequest(Message):
    TYPE: ClassVar[str] = "catalog.list_tags"


class TagListReply(Message):
    TYPE: ClassVar[str] = "catalog.tags"

    tags: tuple[TagView, ...]


class TagRequest(Message):
    """Create (idempotent: an existing name is returned as it is) or delete a tag."""

    TYPE: ClassVar[str] = "catalog.tag"

    name: str = Field(min_length=1, max_length=50)
    color: str = Field(default="#6b7280", pattern=r"^#[0-9a-fA-F]{6}$")


class TagReply(Message):
    TYPE: ClassVar[str] = "catalog.tag_reply"

    tag: TagView


class ProfileView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    email: str | None
    username: str | None
    avatar_url: str | None
    created_at: datetime
    updated_at: datetime


class EnsureProfileCommand(Message):
    """Published by the gateway on first sight of a user: create the profile if missing."""

    TYPE: ClassVar[str] = "catalog.ensure_profile"

    user_id: uuid.UUID
    email: str | None = None


class GetProfileRequest(Message):
    """The user's profile; created on the spot when the ensure command has not arrived yet."""

    TYPE: ClassVar[str] = "catalog.get_profile"

    user_id: uuid.UUID
    email: str | None = None


class UpdateProfileRequest(Message):
    """A field left None is not changed; ``clear_avatar`` removes the avatar.
    A username taken by someone else fails with CONFLICT, field "username"."""

    TYPE: ClassVar[str] = "catalog.update_profile"

    user_id: uuid.UUID
    username: str | None = Field(default=None, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")
    avatar_url: str | None = Field(default=None, max_length=1000)
    clear_avatar: bool = False


class ProfileReply(Message):
    TYPE: ClassVar[str] = "catalog.profile"

    profile: ProfileView


class TemplateView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prompt: str
    negative_prompt: str | None
    category: str | None
    is_public: bool
    use_count: int
    created_at: datetime
    updated_at: datetime


class ListTemplatesRequest(Message):
    """The viewer's own templates and everyone's public ones (``scope``), newest first."""

    TYPE: ClassVar[str] = "catalog.list_templates"

    user_id: uuid.UUID
    scope: Literal["all", "own", "public"] = "all"
    category: str | None = Field(default=None, max_length=50)
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class TemplateListReply(Message):
    TYPE: ClassVar[str] = "catalog.templates"

    templates: tuple[TemplateView, ...]
    next_cursor: str | None = None


class TemplateFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    prompt: str | None = Field(default=None, min_length=1, max_length=2000)
    negative_prompt: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, max_length=50)
    is_public: bool | None = None
    # On update, None leaves a field alone; these optional fields are set to null instead.
    clear: tuple[Literal["negative_prompt", "category"], ...] = ()


class TemplateRequest(Message):
    """Create (``template_id`` None), get, update (``fields``) or delete a template.
    Get sees own and public ones; update and delete only own ones (others: NOT_FOUND)."""

    TYPE: ClassVar[str] = "catalog.template"

    user_id: uuid.UUID
    template_id: uuid.UUID | None = None
    fields: TemplateFields = TemplateFields()


class TemplateReply(Message):
    TYPE: ClassVar[str] = "catalog.template_reply"

    template: TemplateView


class TemplateUsedCommand(Message):
    """A generation used a template: its use_count goes up once per generation."""

    TYPE: ClassVar[str] = "catalog.template_used"

    template_id: uuid.UUID
    generation_id: uuid.UUID
    user_id: uuid.UUID


class ModelPatch(BaseModel):
    """An admin's change to a model record; None leaves a field alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: Annotated[str, Field(min_length=1, max_length=128), Storable] | None = None
    description: Annotated[str, Field(max_length=2000), Storable] | None = None
    is_active: bool | None = None
    is_default: bool | None = None
    sort_order: int | None = None
    default_width: int | None = Field(default=None, ge=64, le=4096)
    default_height: int | None = Field(default=None, ge=64, le=4096)
    max_steps: int | None = Field(default=None, ge=1, le=150)
    cost_per_generation: float | None = Field(default=None, ge=0)
    estimated_time_seconds: float | None = Field(default=None, ge=0)
    default_strength: float | None = Field(default=None, ge=0, le=1)
    strength_min: float | None = Field(default=None, ge=0, le=1)
    strength_max: float | None = Field(default=None, ge=0, le=1)


class UpdateModelRequest(Message):
    TYPE: ClassVar[str] = "catalog.update_model"

    name: str
    patch: ModelPatch


ENSURE_PROFILE = Channel("picture.cmd.catalog.ensure_profile", EnsureProfileCommand)
TEMPLATE_USED = Channel("picture.cmd.catalog.template_used", TemplateUsedCommand)


class ImageDownloadedCommand(Message):
    """The gateway served an image's full content: its download_count (and popularity) goes up."""

    TYPE: ClassVar[str] = "catalog.image_downloaded"

    image_id: uuid.UUID


IMAGE_DOWNLOADED = Channel("picture.cmd.catalog.image_downloaded", ImageDownloadedCommand)

LIST_IMAGES = Query("picture.q.catalog.list_images", ListImagesRequest, ImageListReply)
EXPLORE = Query("picture.q.catalog.explore", ExploreRequest, ImageListReply)
GET_IMAGE_DETAIL = Query("picture.q.catalog.get_image_detail", GetImageDetailRequest, ImageDetailReply)
UPDATE_IMAGE = Query("picture.q.catalog.update_image", UpdateImageRequest, ImageDetailReply)
BULK_IMAGES = Query("picture.q.catalog.bulk_images", BulkImagesRequest, BulkImagesReply)
IMAGE_TAG = Query("picture.q.catalog.image_tag", ImageTagRequest, ImageDetailReply)
LIKE_IMAGE = Query("picture.q.catalog.like", LikeRequest, LikeReply)
LIST_TAGS = Query("picture.q.catalog.list_tags", ListTagsRequest, TagListReply)
CREATE_TAG = Query("picture.q.catalog.create_tag", TagRequest, TagReply)
DELETE_TAG = Query("picture.q.catalog.delete_tag", TagRequest, TagReply)
GET_PROFILE = Query("picture.q.catalog.get_profile", GetProfileRequest, ProfileReply)
UPDATE_PROFILE = Query("picture.q.catalog.update_profile", UpdateProfileRequest, ProfileReply)
LIST_TEMPLATES = Query("picture.q.catalog.list_templates", ListTemplatesRequest, TemplateListReply)
CREATE_TEMPLATE = Query("picture.q.catalog.create_template", TemplateRequest, TemplateReply)
GET_TEMPLATE = Query("picture.q.catalog.get_template", TemplateRequest, TemplateReply)
UPDATE_TEMPLATE = Query("picture.q.catalog.update_template", TemplateRequest, TemplateReply)
DELETE_TEMPLATE = Query("picture.q.catalog.delete_template", TemplateRequest, TemplateReply)
UPDATE_MODEL = Query("picture.q.catalog.update_model", UpdateModelRequest, ModelReply)
