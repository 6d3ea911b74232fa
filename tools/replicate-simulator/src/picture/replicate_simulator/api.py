"""The Replicate-compatible HTTP routes (``/v1/...``) and file delivery (``/delivery/...``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from picture.replicate_simulator.errors import ProblemError, RateLimitedError
from picture.replicate_simulator.headers import parse_duration, parse_prefer_wait
from picture.replicate_simulator.models import (
    ALL_WEBHOOK_EVENTS,
    ModelPredictionRequest,
    VersionPredictionRequest,
)
from picture.replicate_simulator.schemas import model_of_version
from picture.replicate_simulator.state import SimulatorState, get_state
from picture.replicate_simulator.store import Prediction

State = Annotated[SimulatorState, Depends(get_state)]
_UNAUTHENTICATED = "You did not pass a valid authentication token"
_MODEL_CREATED_AT = "2024-01-01T00:00:00.000000Z"
_COG_VERSION = "0.16.8"


async def api_guard(request: Request, state: State) -> None:
    """Authenticate the request, then answer a forced status if the control API asked for one."""
    state.stats.requests += 1
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() not in {"bearer", "token"} or not token:
        raise ProblemError(401, _UNAUTHENTICATED, "Unauthenticated")
    expected = state.settings.token
    if expected is not None and token != expected:
        raise ProblemError(401, _UNAUTHENTICATED, "Unauthenticated")
    forced = state.control.take_forced_status()
    if forced == 429:
        raise RateLimitedError(retry_after=state.settings.retry_after_seconds)
    if forced is not None:
        raise ProblemError(forced, f"Simulated error (HTTP {forced})")


router = APIRouter(prefix="/v1", dependencies=[Depends(api_guard)])
delivery_router = APIRouter()

PreferHeader = Annotated[str | None, Header(alias="prefer")]
CancelAfterHeader = Annotated[str | None, Header(alias="cancel-after")]


async def _create(
    state: SimulatorState,
    *,
    model: str,
    version: str,
    body: ModelPredictionRequest,
    prefer: str | None,
    cancel_after: str | None,
    deployment: str | None = None,
) -> JSONResponse:
    wait = parse_prefer_wait(prefer)
    deadline = parse_duration(cancel_after) if cancel_after else None
    webhook = body.webhook or body.webhook_completed
    events: frozenset[str]
    if body.webhook_events_filter is not None:
        events = frozenset(body.webhook_events_filter)
    elif body.webhook is None and body.webhook_completed is not None:
        events = frozenset({"completed"})
    else:
        events = ALL_WEBHOOK_EVENTS
    prediction = state.store.create(
        model=model,
        version=version,
        input=body.input,
        webhook=webhook,
        events=events,
        stream=bool(body.stream),
        deployment=deployment,
        cancel_after=deadline,
    )
    delay = state.control.take_forced_timeout()
    if delay:
        await asyncio.sleep(delay)
    headers: dict[str, str] = {}
    if wait is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(prediction.done.wait(), wait)
        headers["Preference-Applied"] = f"wait={wait}"
    return JSONResponse(state.store.to_json(prediction), status_code=201, headers=headers)


@router.post("/predictions", status_code=201)
async def create_prediction(
    body: VersionPredictionRequest,
    state: State,
    prefer: PreferHeader = None,
    cancel_after: CancelAfterHeader = None,
) -> JSONResponse:
    """Create a prediction of a version (``owner/name:id`` or a bare version id)."""
    model, sep, version = body.version.rpartition(":")
    if not sep or "/" not in model:
        model, version = model_of_version(body.version) or "unknown/unknown", body.version
    return await _create(
        state, model=model, version=version, body=body, prefer=prefer, cancel_after=cancel_after
    )


@router.post("/models/{owner}/{name}/predictions", status_code=201)
async def create_model_prediction(
    owner: str,
    name: str,
    body: ModelPredictionRequest,
    state: State,
    prefer: PreferHeader = None,
    cancel_after: CancelAfterHeader = None,
) -> JSONResponse:
    """Create a prediction of an official model (version ``hidden``)."""
    return await _create(
        state,
        model=f"{owner}/{name}",
        version="hidden",
        body=body,
        prefer=prefer,
        cancel_after=cancel_after,
    )


@router.post("/deployments/{owner}/{name}/predictions", status_code=201)
async def create_deployment_prediction(
    owner: str,
    name: str,
    body: ModelPredictionRequest,
    state: State,
    prefer: PreferHeader = None,
    cancel_after: CancelAfterHeader = None,
) -> JSONResponse:
    """Create a prediction through a deployment."""
    return await _create(
        state,
        model=f"{owner}/{name}",
        version="hidden",
        body=body,
        prefer=prefer,
        cancel_after=cancel_after,
        deployment=f"{owner}/{name}",
    )


@router.get("/predictions")
async def list_predictions(
    state: State,
    cursor: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> dict[str, Any]:
    """Newest-first, cursor-paged list of predictions (``created_after`` inclusive and
    ``created_before`` exclusive, ISO 8601, as Replicate filters them)."""
    state.stats.lists += 1
    bounds = {"created_after": created_after, "created_before": created_before}
    for name, moment in bounds.items():
        if moment is not None and moment.tzinfo is None:
            bounds[name] = moment.replace(tzinfo=UTC)
    page = state.store.page(cursor, bounds["created_after"], bounds["created_before"])
    kept = urlencode({k: v.isoformat() for k, v in bounds.items() if v is not None})
    base = f"{state.settings.base_url}/v1/predictions?{kept + '&' if kept else ''}cursor="
    return {
        "previous": base + page.previous_cursor if page.previous_cursor else None,
        "next": base + page.next_cursor if page.next_cursor else None,
        "results": [state.store.to_json(p) for p in page.results],
    }


@router.get("/predictions/{prediction_id}")
async def get_prediction(prediction_id: str, state: State) -> dict[str, Any]:
    """Current state of one prediction."""
    state.stats.gets += 1
    return state.store.to_json(state.store.get(prediction_id))


@router.post("/predictions/{prediction_id}/cancel")
async def cancel_prediction(prediction_id: str, state: State) -> dict[str, Any]:
    """Cancel a starting/processing prediction; terminal ones are returned unchanged."""
    prediction = state.store.get(prediction_id)
    state.store.cancel(prediction)
    return state.store.to_json(prediction)


def _sse(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n"


async def _stream_events(prediction: Prediction) -> AsyncIterator[str]:
    await prediction.done.wait()
    if prediction.status == "succeeded":
        outputs = prediction.output if isinstance(prediction.output, list) else [prediction.output]
        for url in outputs:
            yield _sse("output", str(url))
        yield _sse("done", "{}")
    elif prediction.status == "failed":
        yield _sse("error", json.dumps({"detail": prediction.error}))
        yield _sse("done", json.dumps({"reason": "error"}))
    else:
        yield _sse("done", json.dumps({"reason": "canceled"}))


@router.get("/predictions/{prediction_id}/stream")
async def stream_prediction(prediction_id: str, state: State) -> StreamingResponse:
    """Server-sent events: the output URLs once finished, then ``done``."""
    prediction = state.store.get(prediction_id)
    if not prediction.stream:
        raise ProblemError(404, "This prediction was not created with stream: true")
    return StreamingResponse(
        _stream_events(prediction),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


def _version_id(owner: str, name: str) -> str:
    return hashlib.sha256(f"{owner}/{name}".encode()).hexdigest()


def _version(version_id: str) -> dict[str, Any]:
    return {
        "id": version_id,
        "created_at": _MODEL_CREATED_AT,
        "cog_version": _COG_VERSION,
        "openapi_schema": {},
    }


@router.get("/models/{owner}/{name}")
async def get_model(owner: str, name: str, state: State) -> dict[str, Any]:
    """A plausible model object whose latest version id is derived from its name."""
    return {
        "url": f"https://replicate.com/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": f"Simulated {owner}/{name}",
        "visibility": "public",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "latest_version": _version(_version_id(owner, name)),
    }


@router.get("/models/{owner}/{name}/versions/{version_id}")
async def get_model_version(owner: str, name: str, version_id: str, state: State) -> dict[str, Any]:
    """Any version id of any model exists."""
    return _version(version_id)


@router.get("/webhooks/default/secret")
async def webhook_secret(state: State) -> dict[str, str]:
    """The signing secret of webhook deliveries."""
    return {"key": state.settings.webhook_secret}


@router.get("/account")
async def account(state: State) -> dict[str, str]:
    """The authenticated account."""
    return {"type": "user", "username": "simulator", "name": "Simulator"}


@delivery_router.get("/delivery/{token}/{filename}")
async def deliver_file(token: str, filename: str, state: State) -> Response:
    """Serve a rendered output while its signed URL is valid."""
    stored = state.files.get(token, filename)
    if stored is None:
        raise ProblemError(404, "The requested file does not exist or has expired.")
    return Response(stored.data, media_type=stored.content_type)
