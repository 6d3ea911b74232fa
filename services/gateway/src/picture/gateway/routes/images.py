"""GET /v1/images/{id}/content and /thumbnail: the image bytes.

Public images are readable without a token; private ones only by their owner (others: 404).
Object storage with signed URLs: a short-lived redirect. The filesystem backend: bytes streamed
from the media service, with ETag, Range and 304 passed through. SVG originals are always
streamed (never redirected), with ``nosniff``, a sandboxing CSP and ``Content-Disposition:
attachment``, so a hostile SVG can neither run nor render as a page on any origin we answer for.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.background import BackgroundTask

from picture.gateway.auth import MaybeUser
from picture.gateway.deps import BackendDep, HttpDep
from picture.gateway.errors import NotFound, Unavailable

router = APIRouter(prefix="/v1/images", tags=["images"])

SVG = "image/svg+xml"
SVG_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "x-content-type-options": "nosniff",
    "content-disposition": "attachment",
}
PASSED_REQUEST_HEADERS = ("range", "if-none-match", "if-range")
PASSED_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "cache-control",
    "last-modified",
)


async def _serve(
    image_id: uuid.UUID,
    variant: Literal["content", "thumbnail"],
    request: Request,
    user: MaybeUser,
    backend: BackendDep,
    http: HttpDep,
) -> Response:
    image = await backend.image(image_id, user.user_id if user else None)
    key = image.content_key if variant == "content" else image.thumbnail_key
    if key is None:
        raise NotFound("thumbnail")
    resolved = await backend.resolve_object(key)
    cache = "public, max-age=300" if image.is_public else "private, max-age=300"
    is_svg = resolved.content_type.split(";")[0].strip().lower() == SVG
    if resolved.disposition == "redirect" and not is_svg:
        return RedirectResponse(resolved.url, status_code=307, headers={"Cache-Control": cache})
    headers = {k: v for k, v in request.headers.items() if k.lower() in PASSED_REQUEST_HEADERS}
    upstream_request = http.build_request("GET", resolved.url, headers=headers)
    try:
        upstream = await http.send(upstream_request, stream=True)
    except Exception as exc:
        raise Unavailable("image storage did not answer") from exc
    if upstream.status_code not in (200, 206, 304, 416):
        await upstream.aclose()
        raise Unavailable(f"image storage answered {upstream.status_code}")
    out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in PASSED_RESPONSE_HEADERS}
    out_headers["cache-control"] = cache
    out_headers["x-content-type-options"] = "nosniff"
    if is_svg:
        out_headers.update(SVG_HEADERS)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=out_headers,
        background=BackgroundTask(upstream.aclose),
    )


@router.get("/{image_id}/content", summary="The image bytes (or a redirect to them)")
async def image_content(
    image_id: uuid.UUID, request: Request, user: MaybeUser, backend: BackendDep, http: HttpDep
) -> Response:
    response = await _serve(image_id, "content", request, user, backend, http)
    # A whole download (not a revalidation or a range request) counts for explore's "popular".
    if response.status_code in (200, 307):
        await backend.image_downloaded(image_id)
    return response


@router.get("/{image_id}/thumbnail", summary="A 256 px thumbnail of the image")
async def image_thumbnail(
    image_id: uuid.UUID, request: Request, user: MaybeUser, backend: BackendDep, http: HttpDep
) -> Response:
    return await _serve(image_id, "thumbnail", request, user, backend, http)
