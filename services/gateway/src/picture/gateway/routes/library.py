"""The catalog-backed public API: own gallery, explore, tags, likes, prompt templates, and the
admin's model edits.

Every answer comes from the catalog over NATS request/reply (:class:`Library`). BOLA: another
user's private image is 404 everywhere (the catalog filters by owner or public, never answers
"forbidden"). Request bodies forbid unknown fields; errors are problem+json naming the field.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from picture.common import contracts as c
from picture.common.text import Storable, StorableText
from picture.gateway.auth import CurrentUser, MaybeUser
from picture.gateway.deps import AdminUser, BackendDep, SettingsDep
from picture.gateway.errors import InvalidField, NotFound
from picture.gateway.schemas import ModelOut

router = APIRouter(tags=["library"])


# ------------------------------------------------------------------------------------ schemas


class Author(BaseModel):
    username: str | None
    avatar_url: str | None


class GalleryImage(BaseModel):
    id: uuid.UUID
    url: str
    thumbnail_url: str | None
    width: int
    height: int
    format: str
    file_size: int
    prompt: str
    negative_prompt: str | None
    model: str | None
    seed: int | None
    is_public: bool
    is_favorite: bool
    rating: int | None
    download_count: int
    like_count: int
    archived: bool
    archived_at: datetime | None
    created_at: datetime
    tags: list[str]
    author: Author

    @classmethod
    def build(cls, image: c.ImageDetail, base_url: str, viewer_id: uuid.UUID | None) -> GalleryImage:
        own = viewer_id == image.user_id
        return cls(
            id=image.id,
            url=f"{base_url}/v1/images/{image.id}/content",
            thumbnail_url=f"{base_url}/v1/images/{image.id}/thumbnail" if image.thumbnail_key else None,
            width=image.width,
            height=image.height,
            format=image.format,
            file_size=image.file_size,
            prompt=image.prompt,
            negative_prompt=image.negative_prompt,
            model=image.model,
            seed=image.seed,
            is_public=image.is_public,
            # The owner's private marks are shown to the owner only.
            is_favorite=image.is_favorite if own else False,
            rating=image.rating if own else None,
            download_count=image.download_count,
            like_count=image.like_count,
            archived=image.archived_at is not None,
            archived_at=image.archived_at if own else None,
            created_at=image.created_at,
            tags=list(image.tags),
            author=Author(username=image.author_username, avatar_url=image.author_avatar_url),
        )


class ImagePage(BaseModel):
    data: list[GalleryImage]
    next_cursor: str | None


class ImagePatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"is_favorite": True, "rating": 4}]}
    )

    is_public: bool | None = None
    is_favorite: bool | None = None
    rating: int | None = Field(default=None, ge=0, le=5, description="0-5; null clears it.")
    archived: bool | None = None


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["archive", "restore", "delete"]
    ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class BulkResult(BaseModel):
    action: str
    affected: list[uuid.UUID]


class TagName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=50), Storable]


class TagCreate(TagName):
    color: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$"), Storable] = "#6b7280"


class TagOut(BaseModel):
    name: str
    color: str
    created_at: datetime


class TagList(BaseModel):
    data: list[TagOut]


class LikeOut(BaseModel):
    image_id: uuid.UUID
    liked: bool
    like_count: int


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100), Storable]
    prompt: Annotated[str, Field(min_length=1, max_length=2000), Storable]
    negative_prompt: Annotated[str, Field(max_length=2000), Storable] | None = None
    category: Annotated[str, Field(max_length=50), Storable] | None = None
    is_public: bool = False


class TemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100), Storable] | None = None
    prompt: Annotated[str, Field(min_length=1, max_length=2000), Storable] | None = None
    negative_prompt: Annotated[str, Field(max_length=2000), Storable] | None = None
    category: Annotated[str, Field(max_length=50), Storable] | None = None
    is_public: bool | None = None


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    prompt: str
    negative_prompt: str | None
    category: str | None
    is_public: bool
    is_own: bool
    use_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def build(cls, view: c.TemplateView, viewer_id: uuid.UUID) -> TemplateOut:
        data = view.model_dump(exclude={"user_id"})
        return cls(**data, is_own=view.user_id == viewer_id)


class TemplatePage(BaseModel):
    data: list[TemplateOut]
    next_cursor: str | None


class ModelAdminOut(ModelOut):
    replicate_id: str
    version: str | None
    is_active: bool
    sort_order: int


class ModelAdminList(BaseModel):
    data: list[ModelAdminOut]


def _admin_out(model: c.ModelSpec) -> ModelAdminOut:
    return ModelAdminOut.model_validate(
        {**model.model_dump(), "supported_aspect_ratios": list(model.supported_aspect_ratios)}
    )


def _aware(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page."), Storable
]


# ------------------------------------------------------------------------------------ gallery


@router.get("/v1/images", response_model=ImagePage, summary="Own gallery, newest first")
async def list_images(
    user: CurrentUser,
    library: BackendDep,
    settings: SettingsDep,
    archived: bool = False,
    favorite: bool | None = None,
    tag: Annotated[
        list[StorableText] | None, Query(max_length=10, description="Repeat: every tag must be on it.")
    ] = None,
    model: Annotated[str | None, Query(max_length=64), Storable] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> ImagePage:
    reply = await library.ask(
        c.LIST_IMAGES,
        c.ListImagesRequest(
            user_id=user.user_id,
            archived=archived,
            favorite=favorite,
            tags=tuple(tag or ()),
            model=model,
            created_after=_aware(created_after),
            created_before=_aware(created_before),
            limit=limit,
            cursor=cursor,
        ),
        "images",
    )
    return ImagePage(
        data=[GalleryImage.build(i, settings.public_url, user.user_id) for i in reply.images],
        next_cursor=reply.next_cursor,
    )


@router.post("/v1/images/bulk", response_model=BulkResult, summary="Archive, restore or delete own images")
async def bulk_images(body: BulkAction, user: CurrentUser, library: BackendDep) -> BulkResult:
    reply = await library.ask(
        c.BULK_IMAGES,
        c.BulkImagesRequest(user_id=user.user_id, action=body.action, ids=tuple(body.ids)),
        "images",
    )
    return BulkResult(action=body.action, affected=list(reply.affected))


@router.get("/v1/images/{image_id}", response_model=GalleryImage, summary="One image (own or public)")
async def get_image(
    image_id: uuid.UUID, user: MaybeUser, library: BackendDep, settings: SettingsDep
) -> GalleryImage:
    viewer = user.user_id if user else None
    reply = await library.ask(
        c.GET_IMAGE_DETAIL, c.GetImageDetailRequest(image_id=image_id, viewer_id=viewer), "image"
    )
    return GalleryImage.build(reply.image, settings.public_url, viewer)


@router.patch(
    "/v1/images/{image_id}", response_model=GalleryImage, summary="Publish, favorite, rate, archive"
)
async def patch_image(
    image_id: uuid.UUID, body: ImagePatch, user: CurrentUser, library: BackendDep, settings: SettingsDep
) -> GalleryImage:
    reply = await library.ask(
        c.UPDATE_IMAGE,
        c.UpdateImageRequest(
            image_id=image_id,
            user_id=user.user_id,
            is_public=body.is_public,
            is_favorite=body.is_favorite,
            rating=body.rating,
            clear_rating="rating" in body.model_fields_set and body.rating is None,
            archived=body.archived,
        ),
        "image",
    )
    return GalleryImage.build(reply.image, settings.public_url, user.user_id)


@router.delete("/v1/images/{image_id}", status_code=204, summary="Delete an own image and its files")
async def delete_image(image_id: uuid.UUID, user: CurrentUser, library: BackendDep) -> Response:
    reply = await library.ask(
        c.BULK_IMAGES, c.BulkImagesRequest(user_id=user.user_id, action="delete", ids=(image_id,)), "image"
    )
    if not reply.affected:
        raise NotFound("image")
    return Response(status_code=204)


@router.post("/v1/images/{image_id}/tags", response_model=GalleryImage, summary="Tag an own image")
async def add_image_tag(
    image_id: uuid.UUID, body: TagName, user: CurrentUser, library: BackendDep, settings: SettingsDep
) -> GalleryImage:
    reply = await library.ask(
        c.IMAGE_TAG, c.ImageTagRequest(image_id=image_id, user_id=user.user_id, name=body.name), "image"
    )
    return GalleryImage.build(reply.image, settings.public_url, user.user_id)


@router.delete("/v1/images/{image_id}/tags/{name}", response_model=GalleryImage, summary="Untag an own image")
async def remove_image_tag(
    image_id: uuid.UUID,
    name: StorableText,
    user: CurrentUser,
    library: BackendDep,
    settings: SettingsDep,
) -> GalleryImage:
    if not 1 <= len(name) <= 50:
        raise InvalidField("name", "tag names are 1-50 characters")
    reply = await library.ask(
        c.IMAGE_TAG,
        c.ImageTagRequest(image_id=image_id, user_id=user.user_id, name=name, add=False),
        "image",
    )
    return GalleryImage.build(reply.image, settings.public_url, user.user_id)


@router.post("/v1/images/{image_id}/like", response_model=LikeOut, summary="Like (idempotent)")
async def like_image(image_id: uuid.UUID, user: CurrentUser, library: BackendDep) -> LikeOut:
    reply = await library.ask(c.LIKE_IMAGE, c.LikeRequest(image_id=image_id, user_id=user.user_id), "image")
    return LikeOut.model_validate(reply.model_dump())


@router.delete("/v1/images/{image_id}/like", response_model=LikeOut, summary="Unlike (idempotent)")
async def unlike_image(image_id: uuid.UUID, user: CurrentUser, library: BackendDep) -> LikeOut:
    reply = await library.ask(
        c.LIKE_IMAGE, c.LikeRequest(image_id=image_id, user_id=user.user_id, like=False), "image"
    )
    return LikeOut.model_validate(reply.model_dump())


# ------------------------------------------------------------------------------------ explore


@router.get("/v1/explore", response_model=ImagePage, summary="Public images of everyone")
async def explore(
    user: MaybeUser,
    library: BackendDep,
    settings: SettingsDep,
    sort: Literal["recent", "popular"] = "recent",
    q: Annotated[
        str | None, Query(max_length=200, description="Full-text search in prompts."), Storable
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> ImagePage:
    reply = await library.ask(
        c.EXPLORE, c.ExploreRequest(sort=sort, q=q, limit=limit, cursor=cursor), "images"
    )
    viewer = user.user_id if user else None
    return ImagePage(
        data=[GalleryImage.build(i, settings.public_url, viewer) for i in reply.images],
        next_cursor=reply.next_cursor,
    )


# ------------------------------------------------------------------------------------ tags


@router.get("/v1/tags", response_model=TagList, summary="All tags (shared)")
async def list_tags(library: BackendDep) -> TagList:
    reply = await library.ask(c.LIST_TAGS, c.ListTagsRequest(), "tags")
    return TagList(data=[TagOut.model_validate(t.model_dump()) for t in reply.tags])


@router.post("/v1/tags", response_model=TagOut, status_code=201, summary="Create a tag (idempotent)")
async def create_tag(body: TagCreate, user: CurrentUser, library: BackendDep) -> TagOut:
    reply = await library.ask(c.CREATE_TAG, c.TagRequest(name=body.name, color=body.color), "tag")
    return TagOut.model_validate(reply.tag.model_dump())


@router.delete("/v1/tags/{name}", status_code=204, summary="Delete a shared tag (administrators)")
async def delete_tag(name: StorableText, user: AdminUser, library: BackendDep) -> Response:
    if not 1 <= len(name) <= 50:
        raise InvalidField("name", "tag names are 1-50 characters")
    await library.ask(c.DELETE_TAG, c.TagRequest(name=name), "tag")
    return Response(status_code=204)


# ------------------------------------------------------------------------------------ templates


@router.get("/v1/prompt-templates", response_model=TemplatePage, summary="Own and public prompt templates")
async def list_templates(
    user: CurrentUser,
    library: BackendDep,
    scope: Literal["all", "own", "public"] = "all",
    category: Annotated[str | None, Query(max_length=50), Storable] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> TemplatePage:
    reply = await library.ask(
        c.LIST_TEMPLATES,
        c.ListTemplatesRequest(
            user_id=user.user_id, scope=scope, category=category, limit=limit, cursor=cursor
        ),
        "prompt templates",
    )
    return TemplatePage(
        data=[TemplateOut.build(t, user.user_id) for t in reply.templates], next_cursor=reply.next_cursor
    )


@router.post("/v1/prompt-templates", response_model=TemplateOut, status_code=201, summary="Create a template")
async def create_template(body: TemplateCreate, user: CurrentUser, library: BackendDep) -> TemplateOut:
    fields = c.TemplateFields(**body.model_dump())
    reply = await library.ask(
        c.CREATE_TEMPLATE, c.TemplateRequest(user_id=user.user_id, fields=fields), "prompt template"
    )
    return TemplateOut.build(reply.template, user.user_id)


@router.get("/v1/prompt-templates/{template_id}", response_model=TemplateOut, summary="One template")
async def get_template(template_id: uuid.UUID, user: CurrentUser, library: BackendDep) -> TemplateOut:
    reply = await library.ask(
        c.GET_TEMPLATE, c.TemplateRequest(user_id=user.user_id, template_id=template_id), "prompt template"
    )
    return TemplateOut.build(reply.template, user.user_id)


@router.patch(
    "/v1/prompt-templates/{template_id}", response_model=TemplateOut, summary="Edit an own template"
)
async def patch_template(
    template_id: uuid.UUID, body: TemplatePatch, user: CurrentUser, library: BackendDep
) -> TemplateOut:
    for required in ("name", "prompt", "is_public"):
        if required in body.model_fields_set and getattr(body, required) is None:
            raise InvalidField(required, f"{required} may not be null")
    cleared = tuple(
        name
        for name in ("negative_prompt", "category")
        if name in body.model_fields_set and getattr(body, name) is None
    )
    fields = c.TemplateFields(**body.model_dump(exclude_none=True), clear=cleared)
    reply = await library.ask(
        c.UPDATE_TEMPLATE,
        c.TemplateRequest(user_id=user.user_id, template_id=template_id, fields=fields),
        "prompt template",
    )
    return TemplateOut.build(reply.template, user.user_id)


@router.delete("/v1/prompt-templates/{template_id}", status_code=204, summary="Delete an own template")
async def delete_template(template_id: uuid.UUID, user: CurrentUser, library: BackendDep) -> Response:
    await library.ask(
        c.DELETE_TEMPLATE, c.TemplateRequest(user_id=user.user_id, template_id=template_id), "prompt template"
    )
    return Response(status_code=204)


# ------------------------------------------------------------------------------------ admin: models


@router.get("/v1/admin/models", response_model=ModelAdminList, summary="Every model, inactive ones too")
async def admin_list_models(user: AdminUser, library: BackendDep) -> ModelAdminList:
    reply = await library.ask(c.LIST_MODELS, c.ListModelsRequest(include_inactive=True), "models")
    return ModelAdminList(data=[_admin_out(m) for m in reply.models])


@router.patch("/v1/admin/models/{name}", response_model=ModelAdminOut, summary="Activate, deactivate, edit")
async def admin_patch_model(
    name: StorableText, body: c.ModelPatch, user: AdminUser, library: BackendDep
) -> ModelAdminOut:
    reply = await library.ask(c.UPDATE_MODEL, c.UpdateModelRequest(name=name, patch=body), "model")
    library.forget_model(name)  # this replica's model cache sees it at once
    return _admin_out(reply.model)
