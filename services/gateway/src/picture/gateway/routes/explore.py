"""Explore: everyone's public images, recent or popular, with full-text search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from picture.common import contracts as c
from picture.common.text import Storable
from picture.gateway.auth import MaybeUser
from picture.gateway.deps import BackendDep, SettingsDep
from picture.gateway.routes.gallery import GalleryImage, ImagePage
from picture.gateway.schemas import Cursor, Limit

router = APIRouter(tags=["library"])


@router.get("/v1/explore", response_model=ImagePage, summary="Public images of everyone")
async def explore(
    user: MaybeUser,
    backend: BackendDep,
    settings: SettingsDep,
    sort: Literal["recent", "popular"] = "recent",
    q: Annotated[
        str | None, Query(max_length=200, description="Full-text search in prompts."), Storable
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> ImagePage:
    reply = await backend.ask(
        c.EXPLORE, c.ExploreRequest(sort=sort, q=q, limit=limit, cursor=cursor), "images"
    )
    viewer = user.user_id if user else None
    return ImagePage(
        data=[GalleryImage.build(i, settings.public_url, viewer) for i in reply.images],
        next_cursor=reply.next_cursor,
    )
