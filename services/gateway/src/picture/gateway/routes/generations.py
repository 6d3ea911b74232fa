"""POST /v1/generations, GET /v1/generations (list), GET /v1/generations/{id}, POST .../cancel."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from picture.common import contracts as c
from picture.common.ids import uuid7
from picture.common.messaging import QueryFailed
from picture.common.problems import Problem
from picture.gateway.auth import CurrentUser
from picture.gateway.backend import _raise
from picture.gateway.deps import BackendDep, EngineDep, SettingsDep
from picture.gateway.errors import Conflict
from picture.gateway.quota import ChargeDep
from picture.gateway.schemas import GenerationCreate, GenerationOut
from picture.gateway.tables import idempotency_keys
from picture.gateway.validation import apply_model

router = APIRouter(prefix="/v1/generations", tags=["generations"])

PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Missing or invalid access token"},
    404: {"model": Problem, "description": "Not found (or not yours)"},
    422: {"model": Problem, "description": "Invalid request; `field` names the culprit"},
    503: {"model": Problem, "description": "A backing service is unavailable; retry"},
}


async def _generation_id_for(
    engine: EngineDep, user_id: uuid.UUID, key: str | None, body: GenerationCreate
) -> uuid.UUID:
    """A new id, or the id already bound to this Idempotency-Key (409 if the body differs)."""
    new_id = uuid7()
    if key is None:
        return new_id
    request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    async with engine.begin() as conn:
        await conn.execute(
            insert(idempotency_keys)
            .values(user_id=user_id, key=key, request_hash=request_hash, generation_id=new_id)
            .on_conflict_do_nothing()
        )
        row = (
            await conn.execute(
                select(idempotency_keys.c.request_hash, idempotency_keys.c.generation_id).where(
                    idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
                )
            )
        ).one()
    if row.request_hash != request_hash:
        raise Conflict("this Idempotency-Key was used with a different request body")
    generation_id: uuid.UUID = row.generation_id
    return generation_id


@router.post(
    "",
    status_code=202,
    response_model=GenerationOut,
    responses=PROBLEM_RESPONSES,
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
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> GenerationOut:
    model = await backend.model(body.model)
    parameters = apply_model(model, body)
    if body.source_image_id is not None:
        parameters = parameters.model_copy(
            update={"source_image_url": await backend.source_image_url(body.source_image_id, user.user_id)}
        )
    generation_id = await _generation_id_for(engine, user.user_id, idempotency_key, body)
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
    cursor: Annotated[str | None, Query(max_length=200)] = None,
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
