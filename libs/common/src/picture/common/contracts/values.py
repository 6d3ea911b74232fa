"""Value types several services share: statuses, errors, the model record, generation
parameters, stored objects, and the views of images and generations."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TERMINAL_STATUSES",
    "ErrorInfo",
    "ErrorKind",
    "GenerationParameters",
    "GenerationStatus",
    "GenerationView",
    "ImageView",
    "ModelSpec",
    "StatusChange",
    "StoredObject",
]

# --------------------------------------------------------------------------------------------
# Statuses and errors
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


# --------------------------------------------------------------------------------------------
# Models and generation parameters
# --------------------------------------------------------------------------------------------


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
    # Image-to-image strength (default and allowed range); None: the model's own default.
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
    # Image-to-image: a data: URI or a signed https URL, and how far to move from it
    # (0 = keep the source, 1 = ignore it); the adapter maps it per model.
    source_image_url: str | None = None
    strength: float | None = None


# --------------------------------------------------------------------------------------------
# Stored objects and images
# --------------------------------------------------------------------------------------------


class StoredObject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    # "preview": the rasterised WebP of a vector (SVG) original.
    role: Literal["original", "thumbnail", "preview"]
    content_type: str
    size: int
    width: int
    height: int
    sha256: str
    blurhash: str | None = None  # a compact placeholder of the picture


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


# --------------------------------------------------------------------------------------------
# Generations
# --------------------------------------------------------------------------------------------


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: GenerationStatus
    at: datetime
    reason: str | None = None


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
    # Scheduling: where a waiting generation stands, and the batch it belongs to.
    queue_position: int | None = None  # 1 = next to be dispatched; None when not waiting
    eta_seconds: float | None = None  # rough time until it starts, when waiting
    batch_id: uuid.UUID | None = None
    batch_index: int | None = None
    priority: int = 0
    # Grows with every change the orchestrator announces: a reader keeps the highest it has
    # seen, so a late or redelivered event never turns a view back. 0: accepted, not yet queued.
    version: int = 0
