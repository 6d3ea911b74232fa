"""Likes (idempotent: liking twice is one like; the answer has the new count)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from picture.common import contracts as c
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import BackendDep

router = APIRouter(tags=["library"])


class LikeOut(BaseModel):
    image_id: uuid.UUID
    liked: bool
    like_count: int


@router.post("/v1/images/{image_id}/like", response_model=LikeOut, summary="Like (idempotent)")
async def like_image(image_id: uuid.UUID, user: CurrentUser, backend: BackendDep) -> LikeOut:
    reply = await backend.ask(c.LIKE_IMAGE, c.LikeRequest(image_id=image_id, user_id=user.user_id), "image")
    return LikeOut.model_validate(reply.model_dump())


@router.delete("/v1/images/{image_id}/like", response_model=LikeOut, summary="Unlike (idempotent)")
async def unlike_image(image_id: uuid.UUID, user: CurrentUser, backend: BackendDep) -> LikeOut:
    reply = await backend.ask(
        c.LIKE_IMAGE, c.LikeRequest(image_id=image_id, user_id=user.user_id, like=False), "image"
    )
    return LikeOut.model_validate(reply.model_dump())
