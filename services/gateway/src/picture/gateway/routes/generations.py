"""POST /v1/generations, GET /v1/generations (list), GET /v1/generations/{id}, POST .../cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from picture.common import contracts as c
from picture.common.messaging import QueryFailed
from picture.common.problems import Problem
from picture.common.text import Storable
from picture.gateway import idempotency
from picture.gateway.auth import CurrentUser
from picture.gateway.backend import _raise
from picture.gateway.deps import BackendDep, EngineDep, SettingsDep
from picture.gateway.quota import ChargeDep
from picture.gateway.schemas import GenerationCreate, GenerationOut
from picture.gateway.validation import apply_model

router = APIRouter(prefix="/v1/generations", tags=["generations"])

PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Missing or invalid access token"},
    404: {"model": Problem, "description": "Not found (or not yours)"},
    422: {"model": Problem, "description": "Invalid request; `field` names the culprit"},
    503: {"model": Problem, "description": "A backing service is unavailable; retry"},
}
# submissions: also charged against the quotas, and idempotent by key
SUBMIT_RESPONSES: dict[int | str, dict[str, object]] = {
    **PROBLEM_RESPONSES,
    409: {"model": Problem, "description": "Idempotency-Key already used with another body"},
    429: {
        "model": Problem,
        "description": "A quota or rate limit; see Retry-After, RateLimit and RateLimit-Policy",
    },
}


@router.post(
    "",
    status_code=202,
    response_model=GenerationOut,
    responses=SUBMIT_RESPONSES,
    summary="Submit a generation; follow it with GET or the events stream",
)
async def create_generation(
    body: GenerationCreate,
    user: CurrentUser,
    backend: BackendDep,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    charge: ChargeDep,
    idempotency_key: Annotated[str | None, Header(max_length=255), Storable] = None,
) -> GenerationOut:
    model = await backend.model(body.model)
    parameters = apply_model(model, body)
    if body.source_image_id is not None:
        parameters = parameters.model_copy(
            update={"source_image_url": await backend.source_image_url(body.source_image_id, user.user_id)}
        )
    generation_id = await idempotency.bind(engine, user.user_id, idempotency_key, "generation", body)
    # quota + concurrency lease, webhook subscription (gateway, issue #5)
    async with charge([generation_id], webhook_url=body.webhook_url):
        view = await backend.create_generation(
            c.CreateGenerationRequest(
                generation_id=generation_id,
                user_id=user.user_id,
                model=model,
                parameters=parameters,
                reuse=body.reuse,
            )
        )
    if body.prompt_template_id is not None:
        await backend.template_used(body.prompt_template_id, generation_id, user.user_id)
    out = GenerationOut.build(view, settings.public_url)
    response.headers["Location"] = out.links.self
    return out


@router.get(
    "/{generation_id}",
    response_model=GenerationOut,
    responses=PROBLEM_RESPONSES,
    summary="A generation: status, timings, history and, when completed, its image",
)
async def get_generation(
    generation_id: uuid.UUID, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> GenerationOut:
    view = await backend.generation(generation_id, user.user_id)
    return GenerationOut.build(view, settings.public_url)


class GenerationPage(BaseModel):
    data: list[GenerationOut]
    next_cursor: str | None


@router.get(
    "",
    response_model=GenerationPage,
    responses=PROBLEM_RESPONSES,
    summary="Your generations, newest first; filter by status or batch; cursor pagination",
)
async def list_generations(
    user: CurrentUser,
    backend: BackendDep,
    settings: SettingsDep,
    status: c.GenerationStatus | None = None,
    batch_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200), Storable] = None,
) -> GenerationPage:
    try:
        reply = await backend.bus.request(
            c.LIST_GENERATIONS,
            c.ListGenerationsRequest(
                user_id=user.user_id, status=status, batch_id=batch_id, limit=limit, cursor=cursor
            ),
        )
    except QueryFailed as exc:
        _raise(exc, "generations")
    return GenerationPage(
        data=[GenerationOut.build(v, settings.public_url) for v in reply.generations],
        next_cursor=reply.next_cursor,
    )


@router.post(
    "/{generation_id}/cancel",
    response_model=GenerationOut,
    responses={**PROBLEM_RESPONSES, 409: {"model": Problem, "description": "Already finished"}},
    summary="Cancel a queued or running generation (the prediction is cancelled too)",
)
async def cancel_generation(
    generation_id: uuid.UUID, user: CurrentUser, backend: BackendDep, settings: SettingsDep
) -> GenerationOut:
    try:
        reply = await backend.bus.request(
            c.CANCEL_GENERATION, c.CancelGenerationRequest(generation_id=generation_id, user_id=user.user_id)
        )
    except QueryFailed as exc:
        _raise(exc, "generation")
    return GenerationOut.build(reply.generation, settings.public_url)
