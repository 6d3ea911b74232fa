"""Tags, shared by every user: list, create (idempotent), delete (administrators).
Tagging an image is an edit of the image (:mod:`picture.gateway.routes.gallery`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from picture.common import contracts as c
from picture.common.text import Storable, StorableText
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import AdminUser, BackendDep
from picture.gateway.errors import InvalidField

router = APIRouter(tags=["library"])


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


def check_tag_name(name: str) -> None:
    """A tag name from a path (a body's TagName checks its own)."""
    if not 1 <= len(name) <= 50:
        raise InvalidField("name", "tag names are 1-50 characters")


@router.get("/v1/tags", response_model=TagList, summary="All tags (shared)")
async def list_tags(backend: BackendDep) -> TagList:
    reply = await backend.ask(c.LIST_TAGS, c.ListTagsRequest(), "tags")
    return TagList(data=[TagOut.model_validate(t.model_dump()) for t in reply.tags])


@router.post("/v1/tags", response_model=TagOut, status_code=201, summary="Create a tag (idempotent)")
async def create_tag(body: TagCreate, user: CurrentUser, backend: BackendDep) -> TagOut:
    reply = await backend.ask(c.CREATE_TAG, c.TagRequest(name=body.name, color=body.color), "tag")
    return TagOut.model_validate(reply.tag.model_dump())


@router.delete("/v1/tags/{name}", status_code=204, summary="Delete a shared tag (administrators)")
async def delete_tag(name: StorableText, user: AdminUser, backend: BackendDep) -> Response:
    check_tag_name(name)
    await backend.ask(c.DELETE_TAG, c.TagRequest(name=name), "tag")
    return Response(status_code=204)
