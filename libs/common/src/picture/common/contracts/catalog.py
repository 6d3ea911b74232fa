"""The catalog's contracts: the commands it consumes, the queries it answers (models, images,
gallery and explore, tags and likes, profiles, prompt templates) and the event it publishes
when an image is recorded."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from picture.common.contracts.messages import ImportReply, Message
from picture.common.contracts.subjects import Channel, Query
from picture.common.contracts.values import ImageView, ModelSpec, StoredObject
from picture.common.text import Storable

__all__ = [
    "BULK_IMAGES",
    "CREATE_TAG",
    "CREATE_TEMPLATE",
    "DELETE_TAG",
    "DELETE_TEMPLATE",
    "ENSURE_PROFILE",
    "EXPLORE",
    "GET_IMAGE",
    "GET_IMAGE_DETAIL",
    "GET_MODEL",
    "GET_PROFILE",
    "GET_TEMPLATE",
    "IMAGE_CREATED",
    "IMAGE_DOWNLOADED",
    "IMAGE_TAG",
    "IMPORT_IMAGE",
    "IMPORT_PROFILE",
    "IMPORT_TAG",
    "IMPORT_TEMPLATE",
    "LIKE_IMAGE",
    "LIST_IMAGES",
    "LIST_MODELS",
    "LIST_TAGS",
    "LIST_TEMPLATES",
    "MAX_REFERENCED_KEYS",
    "RECORD_IMAGE",
    "RECORD_UPLOAD",
    "REFERENCED_KEYS",
    "TEMPLATE_USED",
    "UPDATE_IMAGE",
    "UPDATE_MODEL",
    "UPDATE_PROFILE",
    "UPDATE_TEMPLATE",
    "BulkImagesReply",
    "BulkImagesRequest",
    "EnsureProfileCommand",
    "ExploreRequest",
    "GetImageDetailRequest",
    "GetImageRequest",
    "GetModelRequest",
    "GetProfileRequest",
    "ImageCreatedEvent",
    "ImageDetail",
    "ImageDetailReply",
    "ImageDownloadedCommand",
    "ImageListReply",
    "ImageReply",
    "ImageTagRequest",
    "ImportImageRequest",
    "ImportProfileRequest",
    "ImportTagRequest",
    "ImportTemplateRequest",
    "ImportedTag",
    "LikeReply",
    "LikeRequest",
    "ListImagesRequest",
    "ListModelsRequest",
    "ListTagsRequest",
    "ListTemplatesRequest",
    "ModelListReply",
    "ModelPatch",
    "ModelReply",
    "ProfileReply",
    "ProfileView",
    "RecordImageCommand",
    "RecordUploadRequest",
    "ReferencedKeysReply",
    "ReferencedKeysRequest",
    "TagListReply",
    "TagReply",
    "TagRequest",
    "TagView",
    "TemplateFields",
    "TemplateListReply",
    "TemplateReply",
    "TemplateRequest",
    "TemplateUsedCommand",
    "TemplateView",
    "UpdateImageRequest",
    "UpdateModelRequest",
    "UpdateProfileRequest",
]

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


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


GET_MODEL = Query("picture.q.catalog.get_model", GetModelRequest, ModelReply)
LIST_MODELS = Query("picture.q.catalog.list_models", ListModelsRequest, ModelListReply)
UPDATE_MODEL = Query("picture.q.catalog.update_model", UpdateModelRequest, ModelReply)

# --------------------------------------------------------------------------------------------
# Images: recording, reading, changing
# --------------------------------------------------------------------------------------------


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


RECORD_IMAGE = Channel("picture.cmd.catalog.record_image", RecordImageCommand)


class ImageCreatedEvent(Message):
    TYPE: ClassVar[str] = "image.created"

    image_id: uuid.UUID
    generation_id: uuid.UUID
    user_id: uuid.UUID


IMAGE_CREATED = Channel("picture.evt.image.created.{generation_id}", ImageCreatedEvent)


class GetImageRequest(Message):
    TYPE: ClassVar[str] = "catalog.get_image"

    image_id: uuid.UUID
    viewer_id: uuid.UUID | None  # None: anonymous viewer, public images only


class ImageReply(Message):
    TYPE: ClassVar[str] = "catalog.image"

    image: ImageView


GET_IMAGE = Query("picture.q.catalog.get_image", GetImageRequest, ImageReply)


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


MAX_REFERENCED_KEYS = 1000


class ReferencedKeysRequest(Message):
    """Which of these storage keys does an image record point at (its content or thumbnail)?
    Asked by media's sweep of unreferenced objects, in batches."""

    TYPE: ClassVar[str] = "catalog.referenced_keys"

    keys: tuple[str, ...] = Field(max_length=MAX_REFERENCED_KEYS)


class ReferencedKeysReply(Message):
    TYPE: ClassVar[str] = "catalog.referenced_keys_reply"

    keys: tuple[str, ...]  # the referenced ones among the asked keys


REFERENCED_KEYS = Query("picture.q.catalog.referenced_keys", ReferencedKeysRequest, ReferencedKeysReply)


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


class ImageDownloadedCommand(Message):
    """The gateway served an image's full content: its download_count (and popularity) goes up."""

    TYPE: ClassVar[str] = "catalog.image_downloaded"

    image_id: uuid.UUID


IMAGE_DOWNLOADED = Channel("picture.cmd.catalog.image_downloaded", ImageDownloadedCommand)
GET_IMAGE_DETAIL = Query("picture.q.catalog.get_image_detail", GetImageDetailRequest, ImageDetailReply)
UPDATE_IMAGE = Query("picture.q.catalog.update_image", UpdateImageRequest, ImageDetailReply)
BULK_IMAGES = Query("picture.q.catalog.bulk_images", BulkImagesRequest, BulkImagesReply)

# --------------------------------------------------------------------------------------------
# Gallery and explore
# --------------------------------------------------------------------------------------------


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


LIST_IMAGES = Query("picture.q.catalog.list_images", ListImagesRequest, ImageListReply)
EXPLORE = Query("picture.q.catalog.explore", ExploreRequest, ImageListReply)

# --------------------------------------------------------------------------------------------
# Tags and likes
# --------------------------------------------------------------------------------------------


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


IMAGE_TAG = Query("picture.q.catalog.image_tag", ImageTagRequest, ImageDetailReply)
LIKE_IMAGE = Query("picture.q.catalog.like", LikeRequest, LikeReply)
LIST_TAGS = Query("picture.q.catalog.list_tags", ListTagsRequest, TagListReply)
CREATE_TAG = Query("picture.q.catalog.create_tag", TagRequest, TagReply)
DELETE_TAG = Query("picture.q.catalog.delete_tag", TagRequest, TagReply)

# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


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


ENSURE_PROFILE = Channel("picture.cmd.catalog.ensure_profile", EnsureProfileCommand)
GET_PROFILE = Query("picture.q.catalog.get_profile", GetProfileRequest, ProfileReply)
UPDATE_PROFILE = Query("picture.q.catalog.update_profile", UpdateProfileRequest, ProfileReply)

# --------------------------------------------------------------------------------------------
# Prompt templates
# --------------------------------------------------------------------------------------------


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


TEMPLATE_USED = Channel("picture.cmd.catalog.template_used", TemplateUsedCommand)
LIST_TEMPLATES = Query("picture.q.catalog.list_templates", ListTemplatesRequest, TemplateListReply)
CREATE_TEMPLATE = Query("picture.q.catalog.create_template", TemplateRequest, TemplateReply)
GET_TEMPLATE = Query("picture.q.catalog.get_template", TemplateRequest, TemplateReply)
UPDATE_TEMPLATE = Query("picture.q.catalog.update_template", TemplateRequest, TemplateReply)
DELETE_TEMPLATE = Query("picture.q.catalog.delete_template", TemplateRequest, TemplateReply)

# --------------------------------------------------------------------------------------------
# Imports from the old product (picture-import): records written with their own ids, owners,
# timestamps and flags. Each is idempotent by id: a second import of a record changes nothing
# and answers ``created`` False.
# --------------------------------------------------------------------------------------------


class ImportProfileRequest(Message):
    """A profile as the old product had it. A username another profile holds is dropped
    (the profile is kept without it)."""

    TYPE: ClassVar[str] = "catalog.import_profile"

    user_id: uuid.UUID
    email: str | None = Field(default=None, max_length=320)
    username: str | None = Field(default=None, max_length=32)
    avatar_url: str | None = Field(default=None, max_length=1000)
    created_at: datetime
    updated_at: datetime


class ImportedTag(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=50)
    color: str = Field(default="#6b7280", pattern=r"^#[0-9a-fA-F]{6}$")


class ImportTagRequest(Message):
    """A shared tag (names are lowercased, as the catalog keeps them)."""

    TYPE: ClassVar[str] = "catalog.import_tag"

    tag: ImportedTag
    created_at: datetime | None = None


class ImportImageRequest(Message):
    """An image already stored by media (``objects``), with the old record's flags, its tags
    and the users who liked it; tags and likes are written with the image, in one transaction."""

    TYPE: ClassVar[str] = "catalog.import_image"

    image_id: uuid.UUID
    user_id: uuid.UUID
    generation_id: uuid.UUID | None = None
    filename: str = Field(min_length=1, max_length=255)
    objects: tuple[StoredObject, ...] = Field(min_length=1)
    prompt: str
    negative_prompt: str | None = None
    model: str | None = Field(default=None, max_length=64)
    seed: int | None = None
    is_public: bool = False
    is_favorite: bool = False
    rating: int | None = Field(default=None, ge=0, le=5)
    download_count: int = Field(default=0, ge=0)
    archived_at: datetime | None = None
    created_at: datetime
    tags: tuple[str, ...] = ()
    liked_by: tuple[uuid.UUID, ...] = ()


class ImportTemplateRequest(Message):
    TYPE: ClassVar[str] = "catalog.import_template"

    template: TemplateView


IMPORT_PROFILE = Query("picture.q.catalog.import_profile", ImportProfileRequest, ImportReply)
IMPORT_TAG = Query("picture.q.catalog.import_tag", ImportTagRequest, ImportReply)
IMPORT_IMAGE = Query("picture.q.catalog.import_image", ImportImageRequest, ImportReply)
IMPORT_TEMPLATE = Query("picture.q.catalog.import_template", ImportTemplateRequest, ImportReply)
