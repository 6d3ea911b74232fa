"""Public request and response bodies of the REST API.

Request models forbid unknown fields (mass assignment: ``user_id``, ``status`` ... -> 422) and
bound every size before anything is sent further.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from picture.common.contracts import GenerationStatus, GenerationView, ImageView
from picture.common.text import Storable

MAX_SEED = 2**32 - 1

# The page parameters of the catalog-backed lists (gallery, explore, prompt templates).
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page."), Storable
]


class GenerationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "flux-schnell",
                    "prompt": "a lighthouse at dusk, oil painting",
                    "width": 1344,
                    "height": 768,
                    "seed": 7,
                }
            ]
        },
    )

    model: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[a-z0-9][a-z0-9.\-]*$",
            description="Model name from GET /v1/models.",
        ),
        Storable,
    ]
    prompt: Annotated[str, Field(min_length=1, max_length=2000), Storable]
    negative_prompt: Annotated[str, Field(max_length=2000), Storable] | None = None
    width: int | None = Field(default=None, ge=64, le=4096, description="Defaults to the model's.")
    height: int | None = Field(default=None, ge=64, le=4096, description="Defaults to the model's.")
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance_scale: float | None = Field(default=None, ge=0, le=50)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    webhook_url: Annotated[str, Field(max_length=2048), Storable] | None = Field(
        default=None,
        description="https URL, public addresses only: each status change is POSTed to it, signed "
        "(Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) and retried with backoff.",
        examples=["https://example.com/hooks/picture"],
    )
    source_image_id: uuid.UUID | None = Field(
        default=None,
        description="Image-to-image: one of your images (e.g. from POST /v1/uploads), for models "
        "with supports_img2img.",
    )
    strength: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Image-to-image: how far to move away from the source (0 keeps it, 1 ignores it); "
        "defaults to the model's.",
    )
    prompt_template_id: uuid.UUID | None = Field(
        default=None, description="The prompt template this request was made from (counts its use)."
    )
    reuse: bool = Field(
        default=True,
        description="With a fixed seed, an identical recent request of yours reuses its image; "
        "false always runs the model.",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value.strip()

    @field_validator("negative_prompt")
    @classmethod
    def _negative_blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class ImageOut(BaseModel):
    id: uuid.UUID
    url: str
    thumbnail_url: str | None
    width: int
    height: int
    format: str
    file_size: int

    @classmethod
    def build(cls, image: ImageView, base_url: str) -> ImageOut:
        return cls(
            id=image.id,
            url=f"{base_url}/v1/images/{image.id}/content",
            thumbnail_url=f"{base_url}/v1/images/{image.id}/thumbnail" if image.thumbnail_key else None,
            width=image.width,
            height=image.height,
            format=image.format,
            file_size=image.file_size,
        )


class Timings(BaseModel):
    queue_time_ms: int | None
    processing_time_ms: int | None
    total_time_ms: int | None


class StatusChangeOut(BaseModel):
    status: GenerationStatus
    at: datetime
    reason: str | None


class Links(BaseModel):
    self: str
    events: str
    cancel: str


class GenerationOut(BaseModel):
    id: uuid.UUID
    status: GenerationStatus
    model: str
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int | None
    guidance_scale: float | None
    seed: int | None
    error_message: str | None
    retry_count: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    timings: Timings
    image: ImageOut | None
    history: list[StatusChangeOut]
    links: Links
    # Scheduling (orchestrator): place in the queue and a rough wait while queued.
    queue_position: int | None = None
    eta_seconds: float | None = None
    batch_id: uuid.UUID | None = None

    @classmethod
    def build(cls, view: GenerationView, base_url: str) -> GenerationOut:
        p = view.parameters
        self_url = f"{base_url}/v1/generations/{view.id}"
        return cls(
            id=view.id,
            status=view.status,
            model=view.model,
            prompt=p.prompt,
            negative_prompt=p.negative_prompt,
            width=p.width,
            height=p.height,
            steps=p.steps,
            guidance_scale=p.guidance_scale,
            seed=p.seed,
            error_message=view.error_message,
            retry_count=view.retry_count,
            created_at=view.created_at,
            started_at=view.started_at,
            completed_at=view.completed_at,
            timings=Timings(
                queue_time_ms=view.queue_time_ms,
                processing_time_ms=view.processing_time_ms,
                total_time_ms=view.total_time_ms,
            ),
            image=ImageOut.build(view.image, base_url) if view.image else None,
            history=[StatusChangeOut(status=h.status, at=h.at, reason=h.reason) for h in view.history],
            links=Links(self=self_url, events=f"{self_url}/events", cancel=f"{self_url}/cancel"),
            queue_position=view.queue_position,
            eta_seconds=view.eta_seconds,
            batch_id=view.batch_id,
        )


class ModelOut(BaseModel):
    name: str
    display_name: str
    description: str
    default_width: int
    default_height: int
    min_width: int
    max_width: int
    min_height: int
    max_height: int
    default_steps: int | None
    max_steps: int
    default_guidance_scale: float | None
    supports_negative_prompt: bool
    supports_seed: bool
    supports_img2img: bool
    supported_aspect_ratios: list[str]
    cost_per_generation: float
    estimated_time_seconds: float
    is_default: bool


class ModelList(BaseModel):
    data: list[ModelOut]
