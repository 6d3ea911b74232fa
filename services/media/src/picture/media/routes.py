"""HTTP: ``GET /objects/{key}`` serves the filesystem backend's objects behind signed URLs.

The URL comes from the ``resolve_object`` query (``?expires=<unix>&sig=<hex hmac>``). A bad or
expired signature is a 403 problem; the file is served with its type, the sha256 ETag
(``If-None-Match`` answers 304) and byte ranges (206, done by Starlette's FileResponse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.problems import ProblemError
from picture.media.errors import InvalidKeyError
from picture.media.signing import UrlSigner
from picture.media.storage import CACHE_CONTROL, FilesystemStorage
from picture.media.svg import SVG, SVG_HEADERS
from picture.media.tables import stored_objects


@dataclass(frozen=True)
class ObjectServing:
    """What the object route needs; set on ``app.state.serving`` by the lifespan."""

    engine: AsyncEngine
    storage: FilesystemStorage
    signer: UrlSigner


async def _serving(request: Request) -> ObjectServing:
    serving: ObjectServing | None = getattr(request.app.state, "serving", None)
    if serving is None:
        raise ProblemError(404, "not-found", "Not found", "objects are not served here")
    return serving


ServingDep = Annotated[ObjectServing, Depends(_serving)]


def _not_found() -> ProblemError:
    return ProblemError(404, "not-found", "Not found", "no such object")


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


router = APIRouter()


@router.api_route("/objects/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_object(
    key: str,
    request: Request,
    serving: ServingDep,
    expires: Annotated[int, Query()] = 0,
    sig: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    if not sig or not serving.signer.verify(key, expires, sig):
        raise ProblemError(
            403, "invalid-signature", "Forbidden", "the URL signature is invalid or has expired"
        )
    try:
        path = serving.storage.path_for(key)
    except InvalidKeyError as exc:
        raise _not_found() from exc
    async with serving.engine.connect() as conn:
        row = (
            await conn.execute(
                select(stored_objects.c.content_type, stored_objects.c.sha256).where(
                    stored_objects.c.key == key
                )
            )
        ).first()
    if row is None or not path.is_file():
        raise _not_found()
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    if row.content_type == SVG:
        headers.update(SVG_HEADERS)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=row.content_type, headers=headers)
