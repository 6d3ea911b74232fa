"""``POST /internal/uploads``: a user's upload, streamed here by the gateway.

Only the gateway calls it (``Authorization: Bearer <PICTURE_MEDIA_INTERNAL_TOKEN>``, compared in
constant time); the user is in ``X-Picture-User-Id`` and the client's file name, percent-encoded,
in ``X-Picture-Filename``. The body is the file's bytes, read with a byte cap (413 past it).

Steps: process (PNG, JPEG or WebP detected from the content, same pipeline as generations) ->
store under server-made keys ``{user_id}/uploads/{upload_id}/image.webp`` and ``thumb.webp``
(the file name never reaches a key) -> record the rows -> ask the catalog to record the image
(``RECORD_UPLOAD``). When storing or the catalog fails, the objects and rows written so far are
deleted before answering, so a failed upload leaves nothing behind. The answer is the image
(201), as the catalog returns it.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.ids import uuid7
from picture.common.messaging import Bus, QueryFailed
from picture.common.problems import ProblemError
from picture.media.errors import PermanentMediaError
from picture.media.handlers import ProcessingOptions, process, put_all, record_objects, stored_objects_of
from picture.media.metrics import UPLOADS
from picture.media.storage import ObjectStorage
from picture.media.tables import stored_objects

log = logging.getLogger(__name__)

MAX_FILENAME = 255


@dataclass(frozen=True)
class UploadContext:
    """What the upload route needs; set on ``app.state.uploads`` by the lifespan."""

    engine: AsyncEngine
    bus: Bus
    storage: ObjectStorage
    options: ProcessingOptions
    token: str
    max_bytes: int
    max_long_side: int = 2048


def clean_filename(raw: str) -> str:
    """A displayable file name: the last path segment, printable, at most 255 characters."""
    name = unquote(raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:MAX_FILENAME] or "upload"


def _unauthorised() -> ProblemError:
    return ProblemError(401, "unauthenticated", "Authentication required", "internal endpoint")


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> ProblemError:
    return ProblemError(
        413, "payload-too-large", "File too large", f"uploads are at most {max_bytes} bytes", field="file"
    )


async def _remove(ctx: UploadContext, objects: Sequence[c.StoredObject]) -> None:
    """Best-effort undo of a failed upload: objects first, then their rows."""
    keys = [o.key for o in objects]
    for key in keys:
        with contextlib.suppress(Exception):
            await ctx.storage.delete(key)
    with contextlib.suppress(Exception):
        async with ctx.engine.begin() as conn:
            await conn.execute(delete(stored_objects).where(stored_objects.c.key.in_(keys)))


router = APIRouter()


@router.post("/internal/uploads", include_in_schema=False)
async def upload(request: Request) -> JSONResponse:
    ctx: UploadContext | None = getattr(request.app.state, "uploads", None)
    if ctx is None:
        raise ProblemError(503, "unavailable", "Service unavailable", "uploads are not ready")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), ctx.token.encode()):
        raise _unauthorised()
    try:
        user_id = uuid.UUID(request.headers.get("x-picture-user-id", ""))
    except ValueError as exc:
        raise ProblemError(
            422, "validation-error", "Invalid request", "X-Picture-User-Id is not a user id"
        ) from exc
    filename = clean_filename(request.headers.get("x-picture-filename", "upload"))
    data = await _read_capped(request, ctx.max_bytes)
    if not data:
        raise ProblemError(422, "validation-error", "Invalid request", "the file is empty", field="file")
    try:
        processed = await process(data, ctx.max_long_side, ctx.options, allow_svg=False)
    except PermanentMediaError as exc:
        UPLOADS.labels("refused").inc()
        raise ProblemError(
            422, "unsupported-image", "Unsupported image", f"{exc.message} ({exc.code})", field="file"
        ) from exc
    upload_id = uuid7()
    parts = stored_objects_of(f"{user_id}/uploads/{upload_id}", processed)
    objects = tuple(obj for obj, _ in parts)
    try:
        await put_all(ctx.storage, parts)
        await record_objects(ctx.engine, user_id, None, objects)
        reply = await ctx.bus.request(
            c.RECORD_UPLOAD,
            c.RecordUploadRequest(image_id=upload_id, user_id=user_id, filename=filename, objects=objects),
        )
    except BaseException as exc:
        UPLOADS.labels("rolled_back").inc()
        log.warning("upload %s failed (%s); removing its objects", upload_id, type(exc).__name__)
        await _remove(ctx, objects)
        if isinstance(exc, QueryFailed) and exc.code is c.QueryErrorCode.INVALID:
            raise ProblemError(
                422, "validation-error", "Invalid request", exc.message, field=exc.field
            ) from exc
        if isinstance(exc, Exception):
            raise ProblemError(
                503,
                "unavailable",
                "Service unavailable",
                "the upload could not be recorded; try again",
                headers={"Retry-After": "2"},
            ) from exc
        raise
    UPLOADS.labels("stored").inc()
    return JSONResponse(reply.image.model_dump(mode="json"), status_code=201)
