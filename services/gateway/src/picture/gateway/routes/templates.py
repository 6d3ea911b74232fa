"""Prompt templates: the user's own and everyone's public ones."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from picture.common import contracts as c
from picture.common.text import Storable
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import BackendDep
from picture.gateway.errors import InvalidField
from picture.gateway.schemas import Cursor, Limit

router = APIRouter(tags=["library"])


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


@router.get("/v1/prompt-templates", response_model=TemplatePage, summary="Own and public prompt templates")
async def list_templates(
    user: CurrentUser,
    backend: BackendDep,
    scope: Literal["all", "own", "public"] = "all",
    category: Annotated[str | None, Query(max_length=50), Storable] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> TemplatePage:
    reply = await backend.ask(
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
async def create_template(body: TemplateCreate, user: CurrentUser, backend: BackendDep) -> TemplateOut:
    fields = c.TemplateFields(**body.model_dump())
    reply = await backend.ask(
        c.CREATE_TEMPLATE, c.TemplateRequest(user_id=user.user_id, fields=fields), "prompt template"
    )
    return TemplateOut.build(reply.template, user.user_id)


@router.get("/v1/prompt-templates/{template_id}", response_model=TemplateOut, summary="One template")
async def get_template(template_id: uuid.UUID, user: CurrentUser, backend: BackendDep) -> TemplateOut:
    reply = await backend.ask(
        c.GET_TEMPLATE, c.TemplateRequest(user_id=user.user_id, template_id=template_id), "prompt template"
    )
    return TemplateOut.build(reply.template, user.user_id)


@router.patch(
    "/v1/prompt-templates/{template_id}", response_model=TemplateOut, summary="Edit an own template"
)
async def patch_template(
    template_id: uuid.UUID, body: TemplatePatch, user: CurrentUser, backend: BackendDep
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
    reply = await backend.ask(
        c.UPDATE_TEMPLATE,
        c.TemplateRequest(user_id=user.user_id, template_id=template_id, fields=fields),
        "prompt template",
    )
    return TemplateOut.build(reply.template, user.user_id)


@router.delete("/v1/prompt-templates/{template_id}", status_code=204, summary="Delete an own template")
async def delete_template(template_id: uuid.UUID, user: CurrentUser, backend: BackendDep) -> Response:
    await backend.ask(
        c.DELETE_TEMPLATE, c.TemplateRequest(user_id=user.user_id, template_id=template_id), "prompt template"
    )
    return Response(status_code=204)
