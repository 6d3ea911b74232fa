"""The orchestrator's contracts: the generation commands it consumes, the generation and batch
queries it answers, and the event it publishes on every status change."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from picture.common.contracts.messages import ImportReply, Message
from picture.common.contracts.subjects import Channel, Query
from picture.common.contracts.values import (
    ErrorKind,
    GenerationParameters,
    GenerationStatus,
    GenerationView,
    ImageView,
    ModelSpec,
    StoredObject,
)

__all__ = [
    "CANCEL_BATCH",
    "CANCEL_GENERATION",
    "CREATE_BATCH",
    "CREATE_GENERATION",
    "DELETE_BATCH",
    "ERROR_STATS",
    "GENERATION_UPDATED",
    "GET_BATCH",
    "GET_GENERATION",
    "IMPORT_BATCH",
    "IMPORT_GENERATION",
    "LIST_BATCHES",
    "LIST_GENERATIONS",
    "RETRY_BATCH",
    "BatchItemSpec",
    "BatchItemView",
    "BatchListReply",
    "BatchReply",
    "BatchRequest",
    "BatchStatus",
    "BatchView",
    "CancelGenerationRequest",
    "CreateBatchRequest",
    "CreateGenerationCommand",
    "ErrorStatsReply",
    "ErrorStatsRequest",
    "ErrorStatsRow",
    "GenerationListReply",
    "GenerationReply",
    "GenerationUpdatedEvent",
    "GetGenerationRequest",
    "ImportBatchRequest",
    "ImportGenerationRequest",
    "ListBatchesRequest",
    "ListGenerationsRequest",
]

# --------------------------------------------------------------------------------------------
# Generations
# --------------------------------------------------------------------------------------------


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


class GenerationUpdatedEvent(Message):
    """Every status change of a generation; the event clients follow."""

    TYPE: ClassVar[str] = "generation.updated"

    generation: GenerationView


GENERATION_UPDATED = Channel("picture.evt.generation.{user_id}.{generation_id}", GenerationUpdatedEvent)


class GetGenerationRequest(Message):
    TYPE: ClassVar[str] = "orchestrator.get_generation"

    generation_id: uuid.UUID
    user_id: uuid.UUID


class GenerationReply(Message):
    TYPE: ClassVar[str] = "orchestrator.generation"

    generation: GenerationView


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


GET_GENERATION = Query("picture.q.orchestrator.get_generation", GetGenerationRequest, GenerationReply)
CANCEL_GENERATION = Query(
    "picture.q.orchestrator.cancel_generation", CancelGenerationRequest, GenerationReply
)
LIST_GENERATIONS = Query(
    "picture.q.orchestrator.list_generations", ListGenerationsRequest, GenerationListReply
)

# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


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


CREATE_BATCH = Query("picture.q.orchestrator.create_batch", CreateBatchRequest, BatchReply)
GET_BATCH = Query("picture.q.orchestrator.get_batch", BatchRequest, BatchReply)
LIST_BATCHES = Query("picture.q.orchestrator.list_batches", ListBatchesRequest, BatchListReply)
CANCEL_BATCH = Query("picture.q.orchestrator.cancel_batch", BatchRequest, BatchReply)
RETRY_BATCH = Query("picture.q.orchestrator.retry_batch", BatchRequest, BatchReply)
DELETE_BATCH = Query("picture.q.orchestrator.delete_batch", BatchRequest, BatchReply)

# --------------------------------------------------------------------------------------------
# Error statistics
# --------------------------------------------------------------------------------------------


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


ERROR_STATS = Query("picture.q.orchestrator.error_stats", ErrorStatsRequest, ErrorStatsReply)

# --------------------------------------------------------------------------------------------
# Imports from the old product (picture-import)
# --------------------------------------------------------------------------------------------


class ImportGenerationRequest(Message):
    """A finished generation of the old product, written as it ended (never dispatched) and
    announced like any other change. Idempotent by ``generation_id``; the reply's ``created``
    says whether it was written now. ``stored_objects`` and ``image_id``: a completed one's
    image, stored by media and recorded by the catalog."""

    TYPE: ClassVar[str] = "orchestrator.import_generation"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    model: ModelSpec
    parameters: GenerationParameters
    status: Literal[GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED]
    error_message: str | None = None
    retry_count: int = Field(default=0, ge=0)
    created_at: datetime
    completed_at: datetime | None = None
    image_id: uuid.UUID | None = None
    stored_objects: tuple[StoredObject, ...] = ()
    # Why the status differs from the old row's (a generation left "processing" is failed).
    reason: str = "imported"
    # Its batch (imported before it, IMPORT_BATCH) and place in it.
    batch_id: uuid.UUID | None = None
    batch_index: int | None = Field(default=None, ge=0)


class ImportBatchRequest(Message):
    """A batch of the old product (its items are imported as generations with its id).
    Idempotent by ``batch_id``."""

    TYPE: ClassVar[str] = "orchestrator.import_batch"

    batch_id: uuid.UUID
    user_id: uuid.UUID
    name: str | None = Field(default=None, max_length=200)
    kind: Literal["batch", "multi"] = "batch"
    model: str = Field(min_length=1, max_length=64)
    created_at: datetime


IMPORT_BATCH = Query("picture.q.orchestrator.import_batch", ImportBatchRequest, ImportReply)
IMPORT_GENERATION = Query("picture.q.orchestrator.import_generation", ImportGenerationRequest, ImportReply)
