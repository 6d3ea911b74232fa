"""The own gallery: list, read, edit (publish, favorite, rate, archive, tag), delete.

Every answer comes from the catalog over NATS request/reply (:meth:`Backend.ask`). BOLA:
another user's private image is 404 everywhere (the catalog filters by owner or public, never
answers "forbidden"). Request bodies forbid unknown fields; errors are problem+json naming the
field. The image bytes are served by :mod:`picture.gateway.routes.images`.
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
from picture.gateway.deps import BackendDep, SettingsDep
from picture.gateway.errors import NotFound
from picture.gateway.routes.tags import TagName, check_tag_name
from picture.gateway.schemas import Cursor, Limit

router = APIRouter(tags=["library"])


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


def _aware(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@router.get("/v1/images", response_model=ImagePage, summary="Own gallery, newest first")
async def list_images(
    user: CurrentUser,
    backend: BackendDep,
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
    reply = await backend.ask(
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
async def bulk_images(body: BulkAction, user: CurrentUser, backend: BackendDep) -> BulkResult:
    reply = await backend.ask(
        c.BULK_IMAGES,
        c.BulkImagesRequest(user_id=user.user_id, action=body.action, ids=tuple(body.ids)),
        "images",
    )
    return BulkResult(action=body.action, affected=list(reply.affected))


@router.get("/v1/images/{image_id}", response_model=GalleryImage, summary="One image (own or public)")
async def get_image(
    image_id: uuid.UUID, user: MaybeUser, backend: BackendDep, settings: SettingsDep
) -> GalleryImage:
    viewer = user.user_id if user else None
    reply = await backend.ask(
        c.GET_IMAGE_DETAIL, c.GetImageDetailRequest(image_id=image_id, viewer_id=viewer), "image"
    )
    return GalleryImage.build(reply.image, settings.public_url, viewer)


@router.patch(
    "/v1/images/{image_id}", response_model=GalleryImage, summary="Publish, favorite, rate, archive"
)
async def patch_image(
    image_id: uuid.UUID, body: ImagePatch, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> GalleryImage:
    reply = await backend.ask(
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
async def delete_image(image_id: uuid.UUID, user: CurrentUser, backend: BackendDep) -> Response:
    reply = await backend.ask(
        c.BULK_IMAGES, c.BulkImagesRequest(user_id=user.user_id, action="delete", ids=(image_id,)), "image"
    )
    if not reply.affected:
        raise NotFound("image")
    return Response(status_code=204)


@router.post("/v1/images/{image_id}/tags", response_model=GalleryImage, summary="Tag an own image")
async def add_image_tag(
    image_id: uuid.UUID, body: TagName, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> GalleryImage:
    reply = await backend.ask(
        c.IMAGE_TAG, c.ImageTagRequest(image_id=image_id, user_id=user.user_id, name=body.name), "image"
    )
    return GalleryImage.build(reply.image, settings.public_url, user.user_id)


@router.delete("/v1/images/{image_id}/tags/{name}", response_model=GalleryImage, summary="Untag an own image")
async def remove_image_tag(
    image_id: uuid.UUID,
    name: StorableText,
    user: CurrentUser,
    backend: BackendDep,
    settings: SettingsDep,
) -> GalleryImage:
    check_tag_name(name)
    reply = await backend.ask(
        c.IMAGE_TAG,
        c.ImageTagRequest(image_id=image_id, user_id=user.user_id, name=name, add=False),
        "image",
    )
    return GalleryImage.build(reply.image, settings.public_url, user.user_id)
