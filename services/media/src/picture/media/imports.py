"""``POST /internal/imports``: an image of the old product, sent by ``picture-import``.

Authenticated like uploads (``Authorization: Bearer <PICTURE_MEDIA_INTERNAL_TOKEN>``). The
owner is in ``X-Picture-User-Id``; ``X-Picture-Generation-Id`` (a generated image) or
``X-Picture-Image-Id`` (an uploaded one) makes the keys, the same a generation or an upload of
the new system gets: ``{user_id}/{generation_id}/...`` or ``{user_id}/uploads/{image_id}/...``.
The bytes go through the same processing as every image (WebP, thumbnail, blurhash, sha256).

The answer (200) is the stored objects; the catalog records the image (the importer asks it).
Keys are derived from the ids, so sending the same image again overwrites the same objects and
rows: a resumed import leaves nothing twice.
"""

from __future__ import annotations

import hmac
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from picture.common.problems import ProblemError
from picture.media.errors import PermanentMediaError
from picture.media.handlers import process, put_all, record_objects, stored_objects_of
from picture.media.metrics import IMPORTS
from picture.media.uploads import UploadContext

# Old generated images may be larger than the upload cap allows (4096 px PNGs, say).
IMPORT_BYTES_FACTOR = 5

router = APIRouter()


def _uuid_header(request: Request, name: str) -> uuid.UUID | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise ProblemError(422, "validation-error", "Invalid request", f"{name} is not a uuid") from exc


@router.post("/internal/imports", include_in_schema=False)
async def import_image(request: Request) -> JSONResponse:
    ctx: UploadContext | None = getattr(request.app.state, "uploads", None)
    if ctx is None:
        raise ProblemError(503, "unavailable", "Service unavailable", "imports are not ready")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), ctx.token.encode()):
        raise ProblemError(401, "unauthenticated", "Authentication required", "internal endpoint")
    user_id = _uuid_header(request, "x-picture-user-id")
    generation_id = _uuid_header(request, "x-picture-generation-id")
    image_id = _uuid_header(request, "x-picture-image-id")
    if user_id is None or (generation_id is None) == (image_id is None):
        raise ProblemError(
            422,
            "validation-error",
            "Invalid request",
            "X-Picture-User-Id and one of X-Picture-Generation-Id, X-Picture-Image-Id are required",
        )
    cap = ctx.max_bytes * IMPORT_BYTES_FACTOR
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:  # refused before the body is read
        IMPORTS.labels("refused").inc()
        raise ProblemError(413, "payload-too-large", "File too large", f"imports are at most {cap} bytes")
    data = await request.body()
    if not data or len(data) > cap:
        IMPORTS.labels("refused").inc()
        raise ProblemError(422, "validation-error", "Invalid request", "the file is empty or too large")
    try:
        processed = await process(data, ctx.max_long_side, ctx.options, allow_svg=True)
    except PermanentMediaError as exc:
        IMPORTS.labels("refused").inc()
        raise ProblemError(
            422, "unsupported-image", "Unsupported image", f"{exc.message} ({exc.code})", field="file"
        ) from exc
    prefix = f"{user_id}/{generation_id}" if generation_id is not None else f"{user_id}/uploads/{image_id}"
    parts = stored_objects_of(prefix, processed)
    objects = tuple(obj for obj, _ in parts)
    await put_all(ctx.storage, parts)
    await record_objects(ctx.engine, user_id, generation_id, objects)
    IMPORTS.labels("stored").inc()
    return JSONResponse({"objects": [o.model_dump(mode="json") for o in objects]})
