"""POST /v1/generations, GET /v1/generations (list), GET /v1/generations/{id}, POST .../cancel."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from picture.common import contracts as c
from picture.common.problems import Problem
from picture.common.text import Storable
from picture.gateway import idempotency, webhooks
from picture.gateway.auth import CurrentUser
from picture.gateway.backend import Backend
from picture.gateway.deps import AcceptanceDep, BackendDep, EngineDep, HubDep, SettingsDep, ViewsDep
from picture.gateway.errors import NotFound
from picture.gateway.live import Hub, stream_position, wait_terminal
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


# How long a cancel waits for the orchestrator to take in a generation accepted a moment ago.
CREATE_IN_FLIGHT_SECONDS = 5.0

PREFER_HEADER = (
    "Prefer `wait=N`: answer when the generation is finished or after N seconds (at most "
    "the server's limit), whichever comes first; the response says `Preference-Applied: wait=N`"
)


def preferred_wait(prefer: str | None, limit: float) -> float | None:
    """Seconds of ``Prefer: wait=N`` (RFC 7240), capped at ``limit``; None when not asked."""
    if not prefer:
        return None
    for preference in prefer.split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                return None  # a preference the server cannot honour is ignored (RFC 7240)
            return max(0.0, min(seconds, limit))
    return None


def etag_of(view: c.GenerationView) -> str:
    """A strong validator: the representation changes only with the version (and, while it
    waits, with its place in the queue)."""
    if view.queue_position is not None:
        return f'"{view.version}.{view.queue_position}"'
    return f'"{view.version}"'


async def waited(
    view: c.GenerationView,
    seconds: float | None,
    position: int | None,
    backend: Backend,
    hub: Hub | None,
    response: Response,
) -> c.GenerationView:
    """``view`` after the wait the client preferred (if any), with the header that says so."""
    if seconds is None or position is None:
        return view
    response.headers["Preference-Applied"] = f"wait={seconds:g}"
    return await wait_terminal(hub, backend.bus.js, view, seconds, position)


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
    acceptance: AcceptanceDep,
    engine: EngineDep,
    settings: SettingsDep,
    hub: HubDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255), Storable] = None,
    prefer: Annotated[str | None, Header(max_length=200, description=PREFER_HEADER), Storable] = None,
) -> GenerationOut:
    model = await backend.model(body.model)
    parameters = apply_model(model, body)
    if body.source_image_id is not None:
        parameters = parameters.model_copy(
            update={"source_image_url": await backend.source_image_url(body.source_image_id, user.user_id)}
        )
    await webhooks.validate(body.webhook_url, settings)  # 422 before anything is charged
    generation_id = await idempotency.bind(engine, user.user_id, idempotency_key, "generation", body)
    wait = preferred_wait(prefer, settings.max_prefer_wait_seconds)
    position = await stream_position(hub, backend.bus.js) if wait else None
    accepted = await acceptance.accept(
        user, generation_id, model, parameters, reuse=body.reuse, webhook_url=body.webhook_url
    )
    if accepted is None:  # accepted by an older gateway: the orchestrator has it
        view = await backend.generation(generation_id, user.user_id)
    else:
        view = accepted.view
        if accepted.new and body.prompt_template_id is not None:
            await backend.template_used(body.prompt_template_id, generation_id, user.user_id)
    view = await waited(view, wait, position, backend, hub, response)
    out = GenerationOut.build(view, settings.public_url)
    response.headers["Location"] = out.links.self
    response.headers["ETag"] = etag_of(view)
    return out


@router.get(
    "/{generation_id}",
    response_model=GenerationOut,
    responses={**PROBLEM_RESPONSES, 304: {"description": "Not modified since the ETag in If-None-Match"}},
    summary="A generation: status, timings, history and, when completed, its image",
)
async def get_generation(
    generation_id: uuid.UUID,
    user: CurrentUser,
    backend: BackendDep,
    settings: SettingsDep,
    hub: HubDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=200), Storable] = None,
    prefer: Annotated[str | None, Header(max_length=200, description=PREFER_HEADER), Storable] = None,
) -> GenerationOut | Response:
    wait = preferred_wait(prefer, settings.max_prefer_wait_seconds)
    position = await stream_position(hub, backend.bus.js) if wait else None
    view = await backend.generation(generation_id, user.user_id)
    view = await waited(view, wait, position, backend, hub, response)
    etag = etag_of(view)
    if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": etag, **response.headers})
    response.headers["ETag"] = etag
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
    reply = await backend.ask(
        c.LIST_GENERATIONS,
        c.ListGenerationsRequest(
            user_id=user.user_id, status=status, batch_id=batch_id, limit=limit, cursor=cursor
        ),
        "generations",
    )
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
    generation_id: uuid.UUID, user: CurrentUser, backend: BackendDep, views: ViewsDep, settings: SettingsDep
) -> GenerationOut:
    request = c.CancelGenerationRequest(generation_id=generation_id, user_id=user.user_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CREATE_IN_FLIGHT_SECONDS
    while True:
        try:
            reply = await backend.ask(c.CANCEL_GENERATION, request, "generation")
            break
        except NotFound:
            # Accepted a moment ago, its create not yet taken in by the orchestrator: try again.
            # (Any version: the orchestrator may have taken it in between its answer and this
            # read, and the read model may already show that.)
            if loop.time() < deadline:
                stored = await views.get(generation_id)
                if stored is not None and stored.user_id == user.user_id:
                    await asyncio.sleep(0.05)
                    continue
            raise
    await views.apply([reply.generation])
    return GenerationOut.build(reply.generation, settings.public_url)
