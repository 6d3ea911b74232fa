"""POST /v1/uploads: a user's own image (JPEG, PNG or WebP), usable as ``source_image_id``.

The multipart body is parsed while it streams in (python-multipart's push parser): only the
``file`` part is kept, and reading stops with 413 as soon as it passes the cap
(``PICTURE_MAX_UPLOAD_BYTES``, 10 MB by default), so at most that much is ever held. The file
goes to the media service's internal endpoint (shared token), which detects the format from
the content, processes and stores it under server-made keys and has the catalog record it
("Uploaded: <name>"), undoing its writes when any step fails. The answer is the new image.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from picture.common.contracts import ImageView
from picture.gateway.auth import CurrentUser
from picture.gateway.deps import HttpDep, SettingsDep
from picture.gateway.errors import InvalidField, PermanentError, Unavailable
from picture.gateway.schemas import ImageOut

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])

ACCEPTED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# Room for the multipart framing and the other (ignored) small fields around the file.
ENVELOPE_BYTES = 64 * 1024
DEVELOPMENT_INTERNAL_TOKEN = "picture-development-internal-token"  # noqa: S105 - matches media's


class _TooLarge(Exception):
    pass


class _FilePart:
    """Collects the ``file`` part of a multipart body, up to ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.data = bytearray()
        self.filename: str | None = None
        self.content_type: str | None = None
        self.files = 0
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._in_file = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }

    def _part_begin(self) -> None:
        self._headers, self._in_file = {}, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and b"filename" in options:
            self.files += 1
            self._in_file = self.files == 1
            self.filename = options[b"filename"].decode("utf-8", "replace")
            self.content_type = self._headers.get(b"content-type", b"").decode("latin-1").strip().lower()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.data += data[start:end]
        if len(self.data) > self.max_bytes:
            raise _TooLarge


def _too_large(max_bytes: int) -> PermanentError:
    return PermanentError(
        413, "payload-too-large", "File too large", f"uploads are at most {max_bytes} bytes", field="file"
    )


async def _read_file(request: Request, max_bytes: int) -> _FilePart:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidField("file", "send the image as multipart/form-data with a 'file' part")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise _too_large(max_bytes)
    part = _FilePart(max_bytes)
    parser = MultipartParser(boundary, part.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + ENVELOPE_BYTES:
                raise _TooLarge
            parser.write(chunk)
        parser.finalize()
    except _TooLarge as exc:
        raise _too_large(max_bytes) from exc
    except MultipartParseError as exc:
        raise InvalidField("file", f"malformed multipart body: {exc}") from exc
    return part


@router.post(
    "",
    status_code=201,
    summary="Upload an image (JPEG, PNG or WebP; multipart field 'file')",
    response_model=ImageOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_image(
    request: Request, user: CurrentUser, settings: SettingsDep, http: HttpDep
) -> JSONResponse:
    part = await _read_file(request, settings.max_upload_bytes)
    if part.files != 1:
        raise InvalidField("file", "send exactly one file in the 'file' part")
    if part.content_type not in ACCEPTED_TYPES:
        raise InvalidField("file", "the file must be a JPEG, PNG or WebP image")
    if not part.data:
        raise InvalidField("file", "the file is empty")
    secret = settings.media_internal_token
    token = secret.get_secret_value() if secret else DEVELOPMENT_INTERNAL_TOKEN
    try:
        response = await http.post(
            f"{settings.media_internal_url.rstrip('/')}/internal/uploads",
            content=bytes(part.data),
            headers={
                "Authorization": f"Bearer {token}",
                "X-Picture-User-Id": str(user.user_id),
                "X-Picture-Filename": quote(part.filename or "upload", safe=""),
                "Content-Type": "application/octet-stream",
            },
        )
    except httpx.HTTPError as exc:
        raise Unavailable("image storage did not answer") from exc
    if response.status_code in (413, 422):
        problem = response.json()
        raise PermanentError(  # the media service refused the file itself
            response.status_code,
            str(problem.get("type", "")).rsplit("/", 1)[-1] or "validation-error",
            str(problem.get("title", "Invalid request")),
            problem.get("detail"),
            field="file",
        )
    if response.status_code != 201:
        raise Unavailable(f"the upload could not be stored ({response.status_code}); try again")
    image = ImageView.model_validate(response.json())
    body = ImageOut.build(image, settings.public_url.rstrip("/")).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers={"Location": f"/v1/images/{image.id}"})
