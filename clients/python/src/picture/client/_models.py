# GENERATED FILE - do not edit. Source: clients/python/openapi.json (the gateway's OpenAPI).
# Regenerate: uv run python clients/python/scripts/export_openapi.py && \
#             uv run python clients/python/scripts/generate_models.py
# mypy: ignore-errors

from __future__ import annotations

from typing import Annotated, Any, Literal
from pydantic import AnyUrl, AwareDatetime, BaseModel, ConfigDict, Field, RootModel
from uuid import UUID
from enum import StrEnum


class AccountDeletion(BaseModel):
    status: Annotated[Literal["deleting"], Field(title="Status")]
    user_id: Annotated[UUID, Field(title="User Id")]


class Author(BaseModel):
    avatar_url: Annotated[str | None, Field(title="Avatar Url")]
    username: Annotated[str | None, Field(title="Username")]


class BatchName(RootModel[str]):
    root: Annotated[str, Field(max_length=200, title="Batch Name")]


class Count(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=5, title="Count")]


class Prompt(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, min_length=1, title="Prompt")]


class Prompt1(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, min_length=1)]


class Prompts(RootModel[list[Prompt1]]):
    root: Annotated[list[Prompt1], Field(max_length=10, min_length=2, title="Prompts")]


class Seed(RootModel[int]):
    root: Annotated[int, Field(ge=0, le=4294967295)]


class Seeds(RootModel[list[Seed]]):
    root: Annotated[list[Seed], Field(max_length=5, min_length=1, title="Seeds")]


class Kind(StrEnum):
    batch = "batch"
    multi = "multi"


class BatchStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    partial = "partial"
    failed = "failed"


class Action(StrEnum):
    archive = "archive"
    restore = "restore"
    delete = "delete"


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Annotated[Action, Field(title="Action")]
    ids: Annotated[list[UUID], Field(max_length=100, min_length=1, title="Ids")]


class BulkResult(BaseModel):
    action: Annotated[str, Field(title="Action")]
    affected: Annotated[list[UUID], Field(title="Affected")]


class Count1(BaseModel):
    count: Annotated[int, Field(title="Count")]
    key: Annotated[str, Field(title="Key")]


class ErrorStatsOut(BaseModel):
    by_day: Annotated[list[Count1], Field(title="By Day")]
    by_model: Annotated[list[Count1], Field(title="By Model")]
    by_type: Annotated[list[Count1], Field(title="By Type")]
    since: Annotated[AwareDatetime, Field(title="Since")]
    total: Annotated[int, Field(title="Total")]
    until: Annotated[AwareDatetime, Field(title="Until")]


class FieldError(BaseModel):
    field: Annotated[str, Field(title="Field")]
    message: Annotated[str, Field(title="Message")]


class GalleryImage(BaseModel):
    archived: Annotated[bool, Field(title="Archived")]
    archived_at: Annotated[AwareDatetime | None, Field(title="Archived At")]
    author: Author
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    download_count: Annotated[int, Field(title="Download Count")]
    file_size: Annotated[int, Field(title="File Size")]
    format: Annotated[str, Field(title="Format")]
    height: Annotated[int, Field(title="Height")]
    id: Annotated[UUID, Field(title="Id")]
    is_favorite: Annotated[bool, Field(title="Is Favorite")]
    is_public: Annotated[bool, Field(title="Is Public")]
    like_count: Annotated[int, Field(title="Like Count")]
    model: Annotated[str | None, Field(title="Model")]
    negative_prompt: Annotated[str | None, Field(title="Negative Prompt")]
    prompt: Annotated[str, Field(title="Prompt")]
    rating: Annotated[int | None, Field(title="Rating")]
    seed: Annotated[int | None, Field(title="Seed")]
    tags: Annotated[list[str], Field(title="Tags")]
    thumbnail_url: Annotated[str | None, Field(title="Thumbnail Url")]
    url: Annotated[str, Field(title="Url")]
    width: Annotated[int, Field(title="Width")]


class GuidanceScale(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=50.0, title="Guidance Scale")]


class Height(RootModel[int]):
    root: Annotated[int, Field(description="Defaults to the model's.", ge=64, le=4096, title="Height")]


class NegativePrompt(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, title="Negative Prompt")]


class Seed1(RootModel[int]):
    root: Annotated[int, Field(ge=0, le=4294967295, title="Seed")]


class Steps(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=150, title="Steps")]


class Strength(RootModel[float]):
    root: Annotated[
        float,
        Field(
            description="Image-to-image: how far to move away from the source (0 keeps it, 1 ignores it); defaults to the model's.",
            ge=0.0,
            le=1.0,
            title="Strength",
        ),
    ]


class WebhookUrl(RootModel[str]):
    root: Annotated[
        str,
        Field(
            description="https URL, public addresses only: each status change is POSTed to it, signed (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) and retried with backoff.",
            examples=["https://example.com/hooks/picture"],
            max_length=2048,
            title="Webhook Url",
        ),
    ]


class Width(RootModel[int]):
    root: Annotated[int, Field(description="Defaults to the model's.", ge=64, le=4096, title="Width")]


class GenerationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guidance_scale: Annotated[GuidanceScale | None, Field(title="Guidance Scale")] = None
    height: Annotated[Height | None, Field(description="Defaults to the model's.", title="Height")] = None
    model: Annotated[
        str,
        Field(
            description="Model name from GET /v1/models.",
            max_length=64,
            min_length=1,
            pattern="^[a-z0-9][a-z0-9.\\-]*$",
            title="Model",
        ),
    ]
    negative_prompt: Annotated[NegativePrompt | None, Field(title="Negative Prompt")] = None
    prompt: Annotated[str, Field(max_length=2000, min_length=1, title="Prompt")]
    prompt_template_id: Annotated[
        UUID | None,
        Field(
            description="The prompt template this request was made from (counts its use).",
            title="Prompt Template Id",
        ),
    ] = None
    reuse: Annotated[
        bool | None,
        Field(
            description="With a fixed seed, an identical recent request of yours reuses its image; false always runs the model.",
            title="Reuse",
        ),
    ] = True
    seed: Annotated[Seed1 | None, Field(title="Seed")] = None
    source_image_id: Annotated[
        UUID | None,
        Field(
            description="Image-to-image: one of your images (e.g. from POST /v1/uploads), for models with supports_img2img.",
            title="Source Image Id",
        ),
    ] = None
    steps: Annotated[Steps | None, Field(title="Steps")] = None
    strength: Annotated[
        Strength | None,
        Field(
            description="Image-to-image: how far to move away from the source (0 keeps it, 1 ignores it); defaults to the model's.",
            title="Strength",
        ),
    ] = None
    webhook_url: Annotated[
        WebhookUrl | None,
        Field(
            description="https URL, public addresses only: each status change is POSTed to it, signed (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature) and retried with backoff.",
            examples=["https://example.com/hooks/picture"],
            title="Webhook Url",
        ),
    ] = None
    width: Annotated[Width | None, Field(description="Defaults to the model's.", title="Width")] = None


class GenerationParameters(BaseModel):
    """
    What the user asked for, validated and with model defaults applied.
    """

    model_config = ConfigDict(extra="forbid")
    guidance_scale: Annotated[float | None, Field(title="Guidance Scale")] = None
    height: Annotated[int, Field(title="Height")]
    negative_prompt: Annotated[str | None, Field(title="Negative Prompt")] = None
    prompt: Annotated[str, Field(title="Prompt")]
    seed: Annotated[int | None, Field(title="Seed")] = None
    source_image_url: Annotated[str | None, Field(title="Source Image Url")] = None
    steps: Annotated[int | None, Field(title="Steps")] = None
    strength: Annotated[float | None, Field(title="Strength")] = None
    width: Annotated[int, Field(title="Width")]


class GenerationStatus(StrEnum):
    pending = "pending"
    queued = "queued"
    processing = "processing"
    downloading = "downloading"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class ImageDetail(BaseModel):
    """
    An image with everything the gallery and explore show (urls filled in by the gateway).
    """

    model_config = ConfigDict(extra="forbid")
    archived_at: Annotated[AwareDatetime | None, Field(title="Archived At")] = None
    author_avatar_url: Annotated[str | None, Field(title="Author Avatar Url")] = None
    author_username: Annotated[str | None, Field(title="Author Username")] = None
    content_key: Annotated[str, Field(title="Content Key")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    download_count: Annotated[int | None, Field(title="Download Count")] = 0
    file_size: Annotated[int, Field(title="File Size")]
    format: Annotated[str, Field(title="Format")]
    generation_id: Annotated[UUID | None, Field(title="Generation Id")]
    height: Annotated[int, Field(title="Height")]
    id: Annotated[UUID, Field(title="Id")]
    is_favorite: Annotated[bool | None, Field(title="Is Favorite")] = False
    is_public: Annotated[bool | None, Field(title="Is Public")] = False
    like_count: Annotated[int | None, Field(title="Like Count")] = 0
    model: Annotated[str | None, Field(title="Model")] = None
    negative_prompt: Annotated[str | None, Field(title="Negative Prompt")] = None
    prompt: Annotated[str, Field(title="Prompt")]
    rating: Annotated[int | None, Field(title="Rating")] = None
    seed: Annotated[int | None, Field(title="Seed")] = None
    tags: Annotated[list[str] | None, Field(title="Tags")] = []
    thumbnail_key: Annotated[str | None, Field(title="Thumbnail Key")] = None
    user_id: Annotated[UUID, Field(title="User Id")]
    width: Annotated[int, Field(title="Width")]


class ImageOut(BaseModel):
    file_size: Annotated[int, Field(title="File Size")]
    format: Annotated[str, Field(title="Format")]
    height: Annotated[int, Field(title="Height")]
    id: Annotated[UUID, Field(title="Id")]
    thumbnail_url: Annotated[str | None, Field(title="Thumbnail Url")]
    url: Annotated[str, Field(title="Url")]
    width: Annotated[int, Field(title="Width")]


class ImagePage(BaseModel):
    data: Annotated[list[GalleryImage], Field(title="Data")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class Rating(RootModel[int]):
    root: Annotated[int, Field(description="0-5; null clears it.", ge=0, le=5, title="Rating")]


class ImagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    archived: Annotated[bool | None, Field(title="Archived")] = None
    is_favorite: Annotated[bool | None, Field(title="Is Favorite")] = None
    is_public: Annotated[bool | None, Field(title="Is Public")] = None
    rating: Annotated[Rating | None, Field(description="0-5; null clears it.", title="Rating")] = None


class ImageView(BaseModel):
    """
    An image as the public API shows it (url filled in by the gateway).
    """

    model_config = ConfigDict(extra="forbid")
    content_key: Annotated[str, Field(title="Content Key")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    file_size: Annotated[int, Field(title="File Size")]
    format: Annotated[str, Field(title="Format")]
    generation_id: Annotated[UUID | None, Field(title="Generation Id")]
    height: Annotated[int, Field(title="Height")]
    id: Annotated[UUID, Field(title="Id")]
    is_public: Annotated[bool | None, Field(title="Is Public")] = False
    thumbnail_key: Annotated[str | None, Field(title="Thumbnail Key")] = None
    user_id: Annotated[UUID, Field(title="User Id")]
    width: Annotated[int, Field(title="Width")]


class LikeOut(BaseModel):
    image_id: Annotated[UUID, Field(title="Image Id")]
    like_count: Annotated[int, Field(title="Like Count")]
    liked: Annotated[bool, Field(title="Liked")]


class LimitsOut(BaseModel):
    active_generations: Annotated[int, Field(title="Active Generations")]
    can_generate: Annotated[bool, Field(title="Can Generate")]
    daily_limit: Annotated[int, Field(title="Daily Limit")]
    daily_reset_at: Annotated[
        AwareDatetime,
        Field(
            description="When the oldest of them leaves the 24 hours: one more becomes possible (now when none)",
            title="Daily Reset At",
        ),
    ]
    daily_used: Annotated[
        int,
        Field(description="Generations charged in the last 24 hours (a rolling window)", title="Daily Used"),
    ]
    hourly_limit: Annotated[int, Field(title="Hourly Limit")]
    hourly_reset_at: Annotated[
        AwareDatetime,
        Field(
            description="When the oldest of them leaves the hour: one more becomes possible (now when none)",
            title="Hourly Reset At",
        ),
    ]
    hourly_used: Annotated[
        int, Field(description="Generations charged in the last hour (a rolling window)", title="Hourly Used")
    ]
    limit_reason: Annotated[
        str | None,
        Field(description="daily, hourly or concurrent; null when you can generate", title="Limit Reason"),
    ]
    max_concurrent: Annotated[int, Field(title="Max Concurrent")]
    total_all_time: Annotated[int, Field(title="Total All Time")]


class Links(BaseModel):
    cancel: Annotated[str, Field(title="Cancel")]
    events: Annotated[str, Field(title="Events")]
    self: Annotated[str, Field(title="Self")]


class MeOut(BaseModel):
    avatar_url: Annotated[str | None, Field(title="Avatar Url")]
    created_at: Annotated[AwareDatetime | None, Field(title="Created At")]
    email: Annotated[str | None, Field(title="Email")]
    id: Annotated[UUID, Field(title="Id")]
    is_anonymous: Annotated[bool, Field(title="Is Anonymous")]
    username: Annotated[str | None, Field(title="Username")]


class AvatarUrl(RootModel[AnyUrl]):
    root: Annotated[AnyUrl, Field(description='https URL; null keeps, "" is refused', title="Avatar Url")]


class Username(RootModel[str]):
    root: Annotated[str, Field(max_length=32, min_length=3, pattern="^[A-Za-z0-9_.\\-]+$", title="Username")]


class MeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    avatar_url: Annotated[
        AvatarUrl | None, Field(description='https URL; null keeps, "" is refused', title="Avatar Url")
    ] = None
    clear_avatar: Annotated[bool | None, Field(title="Clear Avatar")] = False
    username: Annotated[Username | None, Field(title="Username")] = None


class ModelAdminOut(BaseModel):
    cost_per_generation: Annotated[float, Field(title="Cost Per Generation")]
    default_guidance_scale: Annotated[float | None, Field(title="Default Guidance Scale")]
    default_height: Annotated[int, Field(title="Default Height")]
    default_steps: Annotated[int | None, Field(title="Default Steps")]
    default_width: Annotated[int, Field(title="Default Width")]
    description: Annotated[str, Field(title="Description")]
    display_name: Annotated[str, Field(title="Display Name")]
    estimated_time_seconds: Annotated[float, Field(title="Estimated Time Seconds")]
    is_active: Annotated[bool, Field(title="Is Active")]
    is_default: Annotated[bool, Field(title="Is Default")]
    max_height: Annotated[int, Field(title="Max Height")]
    max_steps: Annotated[int, Field(title="Max Steps")]
    max_width: Annotated[int, Field(title="Max Width")]
    min_height: Annotated[int, Field(title="Min Height")]
    min_width: Annotated[int, Field(title="Min Width")]
    name: Annotated[str, Field(title="Name")]
    replicate_id: Annotated[str, Field(title="Replicate Id")]
    sort_order: Annotated[int, Field(title="Sort Order")]
    supported_aspect_ratios: Annotated[list[str], Field(title="Supported Aspect Ratios")]
    supports_img2img: Annotated[bool, Field(title="Supports Img2Img")]
    supports_negative_prompt: Annotated[bool, Field(title="Supports Negative Prompt")]
    supports_seed: Annotated[bool, Field(title="Supports Seed")]
    version: Annotated[str | None, Field(title="Version")]


class ModelOut(BaseModel):
    cost_per_generation: Annotated[float, Field(title="Cost Per Generation")]
    default_guidance_scale: Annotated[float | None, Field(title="Default Guidance Scale")]
    default_height: Annotated[int, Field(title="Default Height")]
    default_steps: Annotated[int | None, Field(title="Default Steps")]
    default_width: Annotated[int, Field(title="Default Width")]
    description: Annotated[str, Field(title="Description")]
    display_name: Annotated[str, Field(title="Display Name")]
    estimated_time_seconds: Annotated[float, Field(title="Estimated Time Seconds")]
    is_default: Annotated[bool, Field(title="Is Default")]
    max_height: Annotated[int, Field(title="Max Height")]
    max_steps: Annotated[int, Field(title="Max Steps")]
    max_width: Annotated[int, Field(title="Max Width")]
    min_height: Annotated[int, Field(title="Min Height")]
    min_width: Annotated[int, Field(title="Min Width")]
    name: Annotated[str, Field(title="Name")]
    supported_aspect_ratios: Annotated[list[str], Field(title="Supported Aspect Ratios")]
    supports_img2img: Annotated[bool, Field(title="Supports Img2Img")]
    supports_negative_prompt: Annotated[bool, Field(title="Supports Negative Prompt")]
    supports_seed: Annotated[bool, Field(title="Supports Seed")]


class CostPerGeneration(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, title="Cost Per Generation")]


class DefaultHeight(RootModel[int]):
    root: Annotated[int, Field(ge=64, le=4096, title="Default Height")]


class DefaultStrength(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=1.0, title="Default Strength")]


class DefaultWidth(RootModel[int]):
    root: Annotated[int, Field(ge=64, le=4096, title="Default Width")]


class Description(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, title="Description")]


class DisplayName(RootModel[str]):
    root: Annotated[str, Field(max_length=128, min_length=1, title="Display Name")]


class EstimatedTimeSeconds(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, title="Estimated Time Seconds")]


class MaxSteps(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=150, title="Max Steps")]


class StrengthMax(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=1.0, title="Strength Max")]


class StrengthMin(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=1.0, title="Strength Min")]


class ModelPatch(BaseModel):
    """
    An admin's change to a model record; None leaves a field alone.
    """

    model_config = ConfigDict(extra="forbid")
    cost_per_generation: Annotated[CostPerGeneration | None, Field(title="Cost Per Generation")] = None
    default_height: Annotated[DefaultHeight | None, Field(title="Default Height")] = None
    default_strength: Annotated[DefaultStrength | None, Field(title="Default Strength")] = None
    default_width: Annotated[DefaultWidth | None, Field(title="Default Width")] = None
    description: Annotated[Description | None, Field(title="Description")] = None
    display_name: Annotated[DisplayName | None, Field(title="Display Name")] = None
    estimated_time_seconds: Annotated[EstimatedTimeSeconds | None, Field(title="Estimated Time Seconds")] = (
        None
    )
    is_active: Annotated[bool | None, Field(title="Is Active")] = None
    is_default: Annotated[bool | None, Field(title="Is Default")] = None
    max_steps: Annotated[MaxSteps | None, Field(title="Max Steps")] = None
    sort_order: Annotated[int | None, Field(title="Sort Order")] = None
    strength_max: Annotated[StrengthMax | None, Field(title="Strength Max")] = None
    strength_min: Annotated[StrengthMin | None, Field(title="Strength Min")] = None


class Height1(RootModel[int]):
    root: Annotated[int, Field(ge=64, le=4096, title="Height")]


class ModelId(RootModel[str]):
    root: Annotated[str, Field(description="Model name or Replicate id.", max_length=200, title="Model Id")]


class ModelVersion(RootModel[str]):
    root: Annotated[str, Field(max_length=200, title="Model Version")]


class NumInferenceSteps(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=150, title="Num Inference Steps")]


class Seed2(RootModel[int]):
    root: Annotated[int, Field(ge=0, title="Seed")]


class SourceImageUrl(RootModel[str]):
    root: Annotated[str, Field(max_length=2048, title="Source Image Url")]


class Strength1(RootModel[float]):
    root: Annotated[float, Field(ge=0.0, le=1.0, title="Strength")]


class Width1(RootModel[int]):
    root: Annotated[int, Field(ge=64, le=4096, title="Width")]


class OldGenerateImage(BaseModel):
    """
    The body the old app sent to ``generate-image`` (unknown fields are ignored, as there).
    """

    generation_id: Annotated[UUID | None, Field(title="Generation Id")] = None
    guidance_scale: Annotated[GuidanceScale | None, Field(title="Guidance Scale")] = None
    height: Annotated[Height1 | None, Field(title="Height")] = None
    model_id: Annotated[ModelId | None, Field(title="Model Id")] = None
    model_version: Annotated[ModelVersion | None, Field(title="Model Version")] = None
    negative_prompt: Annotated[NegativePrompt | None, Field(title="Negative Prompt")] = None
    num_inference_steps: Annotated[NumInferenceSteps | None, Field(title="Num Inference Steps")] = None
    prompt: Annotated[str, Field(max_length=2000, min_length=1, title="Prompt")]
    seed: Annotated[Seed2 | None, Field(title="Seed")] = None
    source_image_url: Annotated[SourceImageUrl | None, Field(title="Source Image Url")] = None
    strength: Annotated[Strength1 | None, Field(title="Strength")] = None
    width: Annotated[Width1 | None, Field(title="Width")] = None


class Status(StrEnum):
    pending = "pending"
    queued = "queued"
    processing = "processing"
    downloading = "downloading"
    completed = "completed"
    failed = "failed"


class OldImage(BaseModel):
    file_size: Annotated[int, Field(title="File Size")]
    format: Annotated[str, Field(title="Format")]
    height: Annotated[int, Field(title="Height")]
    id: Annotated[UUID, Field(title="Id")]
    thumbnail_url: Annotated[str | None, Field(title="Thumbnail Url")]
    url: Annotated[str, Field(title="Url")]
    width: Annotated[int, Field(title="Width")]


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")
    detail: Annotated[str | None, Field(title="Detail")] = None
    errors: Annotated[list[FieldError] | None, Field(title="Errors")] = None
    field: Annotated[str | None, Field(title="Field")] = None
    instance: Annotated[str | None, Field(title="Instance")] = None
    status: Annotated[int, Field(title="Status")]
    title: Annotated[str, Field(title="Title")]
    type: Annotated[str, Field(title="Type")]


class ProfileView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    avatar_url: Annotated[str | None, Field(title="Avatar Url")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    email: Annotated[str | None, Field(title="Email")]
    id: Annotated[UUID, Field(title="Id")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    username: Annotated[str | None, Field(title="Username")]


class Seed3(RootModel[int]):
    root: Annotated[int, Field(description="Batch of prompts only.", ge=0, le=4294967295, title="Seed")]


class SharedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guidance_scale: Annotated[GuidanceScale | None, Field(title="Guidance Scale")] = None
    height: Annotated[Height1 | None, Field(title="Height")] = None
    model: Annotated[
        str, Field(max_length=64, min_length=1, pattern="^[a-z0-9][a-z0-9.\\-]*$", title="Model")
    ]
    negative_prompt: Annotated[NegativePrompt | None, Field(title="Negative Prompt")] = None
    seed: Annotated[Seed3 | None, Field(description="Batch of prompts only.", title="Seed")] = None
    steps: Annotated[Steps | None, Field(title="Steps")] = None
    width: Annotated[Width1 | None, Field(title="Width")] = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: Annotated[AwareDatetime, Field(title="At")]
    reason: Annotated[str | None, Field(title="Reason")] = None
    status: GenerationStatus


class StatusChangeOut(BaseModel):
    at: Annotated[AwareDatetime, Field(title="At")]
    reason: Annotated[str | None, Field(title="Reason")]
    status: GenerationStatus


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    color: Annotated[str | None, Field(pattern="^#[0-9a-fA-F]{6}$", title="Color")] = "#6b7280"
    name: Annotated[str, Field(max_length=50, min_length=1, title="Name")]


class TagName(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=50, min_length=1, title="Name")]


class TagOut(BaseModel):
    color: Annotated[str, Field(title="Color")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    name: Annotated[str, Field(title="Name")]


class Category(RootModel[str]):
    root: Annotated[str, Field(max_length=50, title="Category")]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Annotated[Category | None, Field(title="Category")] = None
    is_public: Annotated[bool | None, Field(title="Is Public")] = False
    name: Annotated[str, Field(max_length=100, min_length=1, title="Name")]
    negative_prompt: Annotated[NegativePrompt | None, Field(title="Negative Prompt")] = None
    prompt: Annotated[str, Field(max_length=2000, min_length=1, title="Prompt")]


class TemplateOut(BaseModel):
    category: Annotated[str | None, Field(title="Category")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[UUID, Field(title="Id")]
    is_own: Annotated[bool, Field(title="Is Own")]
    is_public: Annotated[bool, Field(title="Is Public")]
    name: Annotated[str, Field(title="Name")]
    negative_prompt: Annotated[str | None, Field(title="Negative Prompt")]
    prompt: Annotated[str, Field(title="Prompt")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    use_count: Annotated[int, Field(title="Use Count")]


class TemplatePage(BaseModel):
    data: Annotated[list[TemplateOut], Field(title="Data")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class Name(RootModel[str]):
    root: Annotated[str, Field(max_length=100, min_length=1, title="Name")]


class Prompt2(RootModel[str]):
    root: Annotated[str, Field(max_length=2000, min_length=1, title="Prompt")]


class TemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Annotated[Category | None, Field(title="Category")] = None
    is_public: Annotated[bool | None, Field(title="Is Public")] = None
    name: Annotated[Name | None, Field(title="Name")] = None
    negative_prompt: Annotated[NegativePrompt | None, Field(title="Negative Prompt")] = None
    prompt: Annotated[Prompt2 | None, Field(title="Prompt")] = None


class TemplateView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Annotated[str | None, Field(title="Category")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    id: Annotated[UUID, Field(title="Id")]
    is_public: Annotated[bool, Field(title="Is Public")]
    name: Annotated[str, Field(title="Name")]
    negative_prompt: Annotated[str | None, Field(title="Negative Prompt")]
    prompt: Annotated[str, Field(title="Prompt")]
    updated_at: Annotated[AwareDatetime, Field(title="Updated At")]
    use_count: Annotated[int, Field(title="Use Count")]
    user_id: Annotated[UUID, Field(title="User Id")]


class Timings(BaseModel):
    processing_time_ms: Annotated[int | None, Field(title="Processing Time Ms")]
    queue_time_ms: Annotated[int | None, Field(title="Queue Time Ms")]
    total_time_ms: Annotated[int | None, Field(title="Total Time Ms")]


class DailyLimit(RootModel[int]):
    root: Annotated[int, Field(ge=0, le=1000000, title="Daily Limit")]


class HourlyLimit(RootModel[int]):
    root: Annotated[int, Field(ge=0, le=1000000, title="Hourly Limit")]


class MaxConcurrent(RootModel[int]):
    root: Annotated[int, Field(ge=0, le=10000, title="Max Concurrent")]


class UserLimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    daily_limit: Annotated[DailyLimit | None, Field(title="Daily Limit")] = None
    hourly_limit: Annotated[HourlyLimit | None, Field(title="Hourly Limit")] = None
    max_concurrent: Annotated[MaxConcurrent | None, Field(title="Max Concurrent")] = None


class UserLimitsOut(BaseModel):
    changed: Annotated[bool, Field(title="Changed")]
    daily_limit: Annotated[int | None, Field(title="Daily Limit")]
    hourly_limit: Annotated[int | None, Field(title="Hourly Limit")]
    max_concurrent: Annotated[int | None, Field(title="Max Concurrent")]
    user_id: Annotated[UUID, Field(title="User Id")]


class ValidationError(BaseModel):
    ctx: Annotated[dict[str, Any] | None, Field(title="Context")] = None
    input: Annotated[Any | None, Field(title="Input")] = None
    loc: Annotated[list[str | int], Field(title="Location")]
    msg: Annotated[str, Field(title="Message")]
    type: Annotated[str, Field(title="Error Type")]


class BatchCreate(BaseModel):
    """
    Either ``prompts`` (2-10, a batch) or ``prompt`` with ``seeds`` (1-5) or ``count`` (1-5)
    (a multi-generation: the same prompt, several seeds).
    """

    model_config = ConfigDict(extra="forbid")
    batch_name: Annotated[BatchName | None, Field(title="Batch Name")] = None
    count: Annotated[Count | None, Field(title="Count")] = None
    prompt: Annotated[Prompt | None, Field(title="Prompt")] = None
    prompts: Annotated[Prompts | None, Field(title="Prompts")] = None
    reuse: Annotated[bool | None, Field(title="Reuse")] = True
    seeds: Annotated[Seeds | None, Field(title="Seeds")] = None
    shared_settings: SharedSettings


class BatchItemOut(BaseModel):
    error_message: Annotated[str | None, Field(title="Error Message")]
    generation_id: Annotated[UUID, Field(title="Generation Id")]
    image: ImageOut | None
    index: Annotated[int, Field(title="Index")]
    progress: Annotated[float, Field(title="Progress")]
    prompt: Annotated[str, Field(title="Prompt")]
    seed: Annotated[int | None, Field(title="Seed")]
    status: GenerationStatus


class BatchItemView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_message: Annotated[str | None, Field(title="Error Message")] = None
    generation_id: Annotated[UUID, Field(title="Generation Id")]
    image: ImageView | None = None
    index: Annotated[int, Field(title="Index")]
    progress: Annotated[float, Field(title="Progress")]
    prompt: Annotated[str, Field(title="Prompt")]
    seed: Annotated[int | None, Field(title="Seed")]
    status: GenerationStatus


class BatchOut(BaseModel):
    completed: Annotated[int, Field(title="Completed")]
    created_at: Annotated[Any, Field(title="Created At")]
    failed: Annotated[int, Field(title="Failed")]
    id: Annotated[UUID, Field(title="Id")]
    items: Annotated[list[BatchItemOut], Field(title="Items")]
    kind: Annotated[Kind, Field(title="Kind")]
    model: Annotated[str, Field(title="Model")]
    name: Annotated[str | None, Field(title="Name")]
    pending: Annotated[int, Field(title="Pending")]
    processing: Annotated[int, Field(title="Processing")]
    status: BatchStatus
    total: Annotated[int, Field(title="Total")]


class BatchPage(BaseModel):
    data: Annotated[list[BatchOut], Field(title="Data")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class BatchView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    completed: Annotated[int, Field(title="Completed")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    failed: Annotated[int, Field(title="Failed")]
    id: Annotated[UUID, Field(title="Id")]
    items: Annotated[list[BatchItemView] | None, Field(title="Items", validate_default=True)] = []
    kind: Annotated[Kind, Field(title="Kind")]
    model: Annotated[str, Field(title="Model")]
    name: Annotated[str | None, Field(title="Name")]
    pending: Annotated[int, Field(title="Pending")]
    processing: Annotated[int, Field(title="Processing")]
    status: BatchStatus
    total: Annotated[int, Field(title="Total")]
    user_id: Annotated[UUID, Field(title="User Id")]


class GenerationOut(BaseModel):
    batch_id: Annotated[UUID | None, Field(title="Batch Id")] = None
    completed_at: Annotated[AwareDatetime | None, Field(title="Completed At")]
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    error_message: Annotated[str | None, Field(title="Error Message")]
    eta_seconds: Annotated[float | None, Field(title="Eta Seconds")] = None
    guidance_scale: Annotated[float | None, Field(title="Guidance Scale")]
    height: Annotated[int, Field(title="Height")]
    history: Annotated[list[StatusChangeOut], Field(title="History")]
    id: Annotated[UUID, Field(title="Id")]
    image: ImageOut | None
    links: Links
    model: Annotated[str, Field(title="Model")]
    negative_prompt: Annotated[str | None, Field(title="Negative Prompt")]
    prompt: Annotated[str, Field(title="Prompt")]
    queue_position: Annotated[int | None, Field(title="Queue Position")] = None
    retry_count: Annotated[int, Field(title="Retry Count")]
    seed: Annotated[int | None, Field(title="Seed")]
    started_at: Annotated[AwareDatetime | None, Field(title="Started At")]
    status: GenerationStatus
    steps: Annotated[int | None, Field(title="Steps")]
    timings: Timings
    width: Annotated[int, Field(title="Width")]


class GenerationPage(BaseModel):
    data: Annotated[list[GenerationOut], Field(title="Data")]
    next_cursor: Annotated[str | None, Field(title="Next Cursor")]


class GenerationView(BaseModel):
    """
    A generation as the orchestrator reports it.
    """

    model_config = ConfigDict(extra="forbid")
    batch_id: Annotated[UUID | None, Field(title="Batch Id")] = None
    batch_index: Annotated[int | None, Field(title="Batch Index")] = None
    completed_at: Annotated[AwareDatetime | None, Field(title="Completed At")] = None
    created_at: Annotated[AwareDatetime, Field(title="Created At")]
    error_message: Annotated[str | None, Field(title="Error Message")] = None
    eta_seconds: Annotated[float | None, Field(title="Eta Seconds")] = None
    history: Annotated[list[StatusChange] | None, Field(title="History", validate_default=True)] = []
    id: Annotated[UUID, Field(title="Id")]
    image: ImageView | None = None
    model: Annotated[str, Field(title="Model")]
    parameters: GenerationParameters
    priority: Annotated[int | None, Field(title="Priority")] = 0
    processing_time_ms: Annotated[int | None, Field(title="Processing Time Ms")] = None
    queue_position: Annotated[int | None, Field(title="Queue Position")] = None
    queue_time_ms: Annotated[int | None, Field(title="Queue Time Ms")] = None
    retry_count: Annotated[int | None, Field(title="Retry Count")] = 0
    started_at: Annotated[AwareDatetime | None, Field(title="Started At")] = None
    status: GenerationStatus
    total_time_ms: Annotated[int | None, Field(title="Total Time Ms")] = None
    user_id: Annotated[UUID, Field(title="User Id")]
    version: Annotated[int | None, Field(title="Version")] = 0


class HTTPValidationError(BaseModel):
    detail: Annotated[list[ValidationError] | None, Field(title="Detail")] = None


class ModelAdminList(BaseModel):
    data: Annotated[list[ModelAdminOut], Field(title="Data")]


class ModelList(BaseModel):
    data: Annotated[list[ModelOut], Field(title="Data")]


class OldGenerateImageReply(BaseModel):
    """
    What the old function answered.
    """

    error: Annotated[str | None, Field(title="Error")] = None
    generation_id: Annotated[UUID | None, Field(title="Generation Id")] = None
    generation_time_seconds: Annotated[float | None, Field(title="Generation Time Seconds")] = None
    image: OldImage | None = None
    image_url: Annotated[str | None, Field(title="Image Url")] = None
    model: Annotated[str | None, Field(title="Model")] = None
    seed: Annotated[int | None, Field(title="Seed")] = None
    status: Annotated[Status | None, Field(title="Status")] = None
    success: Annotated[bool, Field(title="Success")]


class TagList(BaseModel):
    data: Annotated[list[TagOut], Field(title="Data")]


class AccountExport(BaseModel):
    batches: Annotated[list[BatchView], Field(title="Batches")]
    exported_at: Annotated[AwareDatetime, Field(title="Exported At")]
    generations: Annotated[list[GenerationView], Field(title="Generations")]
    images: Annotated[list[ImageDetail], Field(title="Images")]
    profile: ProfileView
    prompt_templates: Annotated[list[TemplateView], Field(title="Prompt Templates")]
