"""The models: GET /v1/models and GET /v1/models/{name}, public and cacheable (ETag;
If-None-Match -> 304); the administrators' list and edits under /v1/admin/models
(:data:`admin_router`)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import Response
from pydantic import BaseModel

from picture.common import contracts as c
from picture.common.problems import Problem
from picture.common.text import Storable, StorableText
from picture.gateway.deps import AdminUser, BackendDep
from picture.gateway.errors import NotFound
from picture.gateway.schemas import ModelList, ModelOut

router = APIRouter(prefix="/v1/models", tags=["models"])
admin_router = APIRouter(tags=["library"])

CACHE_CONTROL = "public, max-age=60"
RESPONSES: dict[int | str, dict[str, object]] = {
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    503: {"model": Problem, "description": "The catalog is unavailable; retry"},
}


def _out(model: c.ModelSpec) -> ModelOut:
    return ModelOut.model_validate(
        {**model.model_dump(), "supported_aspect_ratios": list(model.supported_aspect_ratios)}
    )


def _cached(body: BaseModel, if_none_match: str | None) -> Response:
    payload = body.model_dump_json().encode()
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match is not None:
        candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        if etag in candidates or "*" in candidates:
            return Response(status_code=304, headers=headers)
    return Response(payload, media_type="application/json", headers=headers)


@router.get("", response_model=ModelList, responses=RESPONSES, summary="Active models, the default first")
async def list_models(
    backend: BackendDep, if_none_match: Annotated[str | None, Header(max_length=1024), Storable] = None
) -> Response:
    return _cached(ModelList(data=[_out(m) for m in await backend.models()]), if_none_match)


@router.get(
    "/{name}",
    response_model=ModelOut,
    responses={**RESPONSES, 404: {"model": Problem, "description": "No such model"}},
    summary="One model",
)
async def get_model(
    name: Annotated[str, Path(max_length=64), Storable],
    backend: BackendDep,
    if_none_match: Annotated[str | None, Header(max_length=1024), Storable] = None,
) -> Response:
    for model in await backend.models():
        if model.name == name:
            return _cached(_out(model), if_none_match)
    raise NotFound("model")


# ------------------------------------------------------------------ administrators (AdminUser)


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


@admin_router.get("/v1/admin/models", response_model=ModelAdminList, summary="Every model, inactive ones too")
async def admin_list_models(user: AdminUser, backend: BackendDep) -> ModelAdminList:
    reply = await backend.ask(c.LIST_MODELS, c.ListModelsRequest(include_inactive=True), "models")
    return ModelAdminList(data=[_admin_out(m) for m in reply.models])


@admin_router.patch(
    "/v1/admin/models/{name}", response_model=ModelAdminOut, summary="Activate, deactivate, edit"
)
async def admin_patch_model(
    name: StorableText, body: c.ModelPatch, user: AdminUser, backend: BackendDep
) -> ModelAdminOut:
    reply = await backend.ask(c.UPDATE_MODEL, c.UpdateModelRequest(name=name, patch=body), "model")
    backend.forget_model(name)  # this replica's model cache sees it at once
    return _admin_out(reply.model)
