"""GET /v1/models, GET /v1/models/{name}: public."""

from __future__ import annotations

from fastapi import APIRouter

from picture.common.contracts import ModelSpec
from picture.gateway.deps import BackendDep
from picture.gateway.errors import NotFound
from picture.gateway.schemas import ModelList, ModelOut

router = APIRouter(prefix="/v1/models", tags=["models"])


def _out(model: ModelSpec) -> ModelOut:
    return ModelOut.model_validate(
        {**model.model_dump(), "supported_aspect_ratios": list(model.supported_aspect_ratios)}
    )


@router.get("", response_model=ModelList, summary="Active models, the default first")
async def list_models(backend: BackendDep) -> ModelList:
    return ModelList(data=[_out(m) for m in await backend.models()])


@router.get("/{name}", response_model=ModelOut, summary="One model")
async def get_model(name: str, backend: BackendDep) -> ModelOut:
    for model in await backend.models():
        if model.name == name:
            return _out(model)
    raise NotFound("model")
