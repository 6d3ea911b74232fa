"""Live updates: Server-Sent Events per generation and per batch, and a WebSocket per user.

- ``GET /v1/generations/{id}/events``: the first event is the current state; then every status
  change (status, queue position, progress) until a terminal state, then the stream ends.
  Event ids are JetStream sequence numbers: reconnecting with ``Last-Event-ID`` resumes right
  after the last event seen (nothing missed, nothing repeated). A comment line every
  ``sse_heartbeat_seconds`` keeps proxies from closing an idle stream. A resumed stream of a
  finished generation with nothing left to send answers 204 (browsers stop reconnecting).
- ``GET /v1/batches/{id}/events``: the batch (counts and items), then each item's update
  followed by the batch's new counts, until the batch is finished.
- ``/v1/ws``: every generation event of the user. Browsers cannot set headers on a WebSocket:
  the token comes as ``?access_token=`` or as the subprotocols ``bearer, <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import nats.errors
import nats.js.errors
from fastapi import APIRouter, Header, WebSocket
from fastapi.responses import Response, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from picture.common import contracts as c
from picture.common.problems import Problem, ProblemError
from picture.common.text import Storable
from picture.gateway.auth import CurrentUser, authenticate
from picture.gateway.deps import BackendDep, SettingsDep, StateDep
from picture.gateway.errors import InvalidField, Unavailable
from picture.gateway.limits import LimitExceeded
from picture.gateway.live import (
    HEARTBEAT,
    PROGRESS,
    follow,
    generation_payload,
    generation_subject,
    last_sequence,
    last_update,
    sse,
)
from picture.gateway.state import GatewayState, gateway_state

router = APIRouter(tags=["live updates"])

NATS_ERRORS = (nats.errors.Error, nats.js.errors.Error, TimeoutError)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An event stream (text/event-stream); `id` is the resume point.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    204: {"description": "Resumed after the last event of a finished generation: nothing to send."},
    401: {"model": Problem, "description": "Missing or invalid access token"},
    404: {"model": Problem, "description": "Not found (or not yours)"},
    422: {"model": Problem, "description": "Invalid Last-Event-ID"},
    429: {"model": Problem, "description": "Too many open streams"},
    503: {"model": Problem, "description": "Live updates unavailable; retry"},
}
BATCH_DONE = {c.BatchStatus.COMPLETED, c.BatchStatus.PARTIAL, c.BatchStatus.FAILED}


def _resume_point(last_event_id: str | None) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    try:
        value = int(last_event_id.strip())
    except ValueError:
        raise InvalidField("Last-Event-ID", "Last-Event-ID must be an event id of this stream") from None
    if value < 0:
        raise InvalidField("Last-Event-ID", "Last-Event-ID must be an event id of this stream")
    return value


@contextmanager
def _live() -> Iterator[None]:
    """JetStream not answering a stream's first reads: 503, the client retries."""
    try:
        yield
    except NATS_ERRORS as exc:
        raise Unavailable("live updates are unavailable right now") from exc


@contextmanager
def _stream_slot(state: GatewayState, user_id: uuid.UUID) -> Iterator[None]:
    """Bound the streams one user holds open on this replica."""
    counts = state.open_streams
    limit = state.settings.max_streams_per_user
    if counts.get(user_id, 0) >= limit:
        raise LimitExceeded(
            "streams", f"at most {limit} open event streams", limit=limit, window=60, reset_in=5
        )
    counts[user_id] = counts.get(user_id, 0) + 1
    try:
        yield
    finally:
        counts[user_id] -= 1
        if counts[user_id] <= 0:
            del counts[user_id]


@router.get(
    "/v1/generations/{generation_id}/events",
    response_class=StreamingResponse,
    responses=SSE_RESPONSES,
    summary="Follow a generation live (Server-Sent Events; resumable with Last-Event-ID)",
)
async def generation_events(
    generation_id: uuid.UUID,
    state: StateDep,
    user: CurrentUser,
    backend: BackendDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=20), Storable] = None,
) -> Response:
    resume = _resume_point(last_event_id)
    view = await backend.generation(generation_id, user.user_id)  # 404 unless it is yours
    js = backend.bus.js
    subject = generation_subject(user.user_id, generation_id)
    base = settings.public_url
    first: tuple[int, c.GenerationView] | None = None
    with _live():
        if resume is None:
            stream_seq = await last_sequence(js)
            last = await last_update(js, subject)
            first = (last.seq, last.generation) if last else (stream_seq, view)
            start = first[0] + 1
        else:
            start = resume + 1
            if view.status.is_terminal:
                last = await last_update(js, subject)
                if last is None or last.seq <= resume:
                    return Response(status_code=204)
    slot = _stream_slot(state, user.user_id)
    slot.__enter__()
    hub = state.hub

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            if first is not None:
                yield sse(generation_payload(first[1], base), event="generation", id=first[0])
                if first[1].status.is_terminal:
                    return
            async with follow(hub, js, user.user_id, generation_id, start) as follower:
                while True:
                    update = await follower.next(settings.sse_heartbeat_seconds)
                    if update is None:
                        yield HEARTBEAT
                        continue
                    yield sse(generation_payload(update.generation, base), event="generation", id=update.seq)
                    if update.generation.status.is_terminal:
                        return
        finally:
            slot.__exit__(None, None, None)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _batch_payload(batch: c.BatchView) -> dict[str, Any]:
    return {
        "id": str(batch.id),
        "name": batch.name,
        "status": batch.status.value,
        "total": batch.total,
        "completed": batch.completed,
        "failed": batch.failed,
        "pending": batch.pending,
        "processing": batch.processing,
        "progress": round(sum(i.progress for i in batch.items) / len(batch.items), 3) if batch.items else 0.0,
        "items": [
            {
                "generation_id": str(i.generation_id),
                "index": i.index,
                "status": i.status.value,
                "progress": i.progress,
                "error_message": i.error_message,
            }
            for i in batch.items
        ],
    }


@router.get(
    "/v1/batches/{batch_id}/events",
    response_class=StreamingResponse,
    responses=SSE_RESPONSES,
    summary="Follow a batch live (Server-Sent Events; resumable with Last-Event-ID)",
)
async def batch_events(
    batch_id: uuid.UUID,
    state: StateDep,
    user: CurrentUser,
    backend: BackendDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=20), Storable] = None,
) -> Response:
    resume = _resume_point(last_event_id)
    batch = await backend.batch(batch_id, user.user_id)  # 404 unless it is yours
    js = backend.bus.js
    base = settings.public_url
    with _live():
        stream_seq = await last_sequence(js)
    start = (resume if resume is not None else stream_seq) + 1
    slot = _stream_slot(state, user.user_id)
    slot.__enter__()
    hub = state.hub

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            yield sse(_batch_payload(batch), event="batch", id=start - 1)
            if batch.status in BATCH_DONE:
                return
            async with follow(hub, js, user.user_id, None, start) as follower:
                while True:
                    update = await follower.next(settings.sse_heartbeat_seconds)
                    if update is None:
                        yield HEARTBEAT
                        continue
                    if update.generation.batch_id != batch_id:
                        continue
                    yield sse(generation_payload(update.generation, base), event="generation", id=update.seq)
                    current = await backend.batch(batch_id, user.user_id)
                    yield sse(_batch_payload(current), event="batch")
                    if current.status in BATCH_DONE:
                        return
        finally:
            slot.__exit__(None, None, None)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.websocket("/v1/ws")
async def user_socket(websocket: WebSocket) -> None:
    """Every generation event of the user, as JSON text frames ``{"type", "seq", "generation"}``.
    ``?since=<seq>`` resumes after a sequence; otherwise only new events are sent. The first
    frame, ``{"type": "ready", "seq"}``, says the subscription is in place; ``ping`` frames
    keep an idle connection alive."""
    protocols: list[str] = list(websocket.scope.get("subprotocols") or [])
    token = websocket.query_params.get("access_token")
    subprotocol = None
    state = gateway_state(websocket)
    if token is None and len(protocols) >= 2 and protocols[0].lower() == "bearer":
        token, subprotocol = protocols[1], protocols[0]
    if not token or len(token) > state.settings.max_token_bytes:
        await websocket.close(code=4401, reason="missing access token")
        return
    try:
        user = await authenticate(websocket, token)
        since = _resume_point(websocket.query_params.get("since"))
    except ProblemError as exc:
        await websocket.close(code=4000 + exc.status, reason=(exc.detail or exc.title)[:120])
        return
    backend, settings, hub = state.backend, state.settings, state.hub
    try:
        start = (since if since is not None else await last_sequence(backend.bus.js)) + 1
    except NATS_ERRORS:
        await websocket.close(code=1013, reason="live updates unavailable")
        return
    try:
        slot = _stream_slot(state, user.user_id)
        slot.__enter__()
    except ProblemError:
        await websocket.close(code=1008, reason="too many open streams")
        return
    await websocket.accept(subprotocol=subprotocol)

    async def pump() -> None:
        async with follow(hub, backend.bus.js, user.user_id, None, start) as follower:
            await websocket.send_json({"type": "ready", "seq": start - 1})
            while True:
                update = await follower.next(settings.sse_heartbeat_seconds)
                if update is None:
                    await websocket.send_json({"type": "ping"})
                    continue
                payload = generation_payload(update.generation, settings.public_url)
                await websocket.send_json({"type": "generation", "seq": update.seq, "generation": payload})

    async def drain() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # clients need not send; we notice a close

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(drain())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        slot.__exit__(None, None, None)
        with contextlib.suppress(Exception):
            await websocket.close()


__all__ = ["PROGRESS", "router"]
