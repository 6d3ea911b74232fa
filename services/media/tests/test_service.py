"""The service end to end: real NATS and PostgreSQL, a local source server, the app in uvicorn."""

from __future__ import annotations

import asyncio
import io
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import uvicorn
from nats.aio.msg import Msg
from PIL import Image
from sqlalchemy import select

from picture.common import contracts as c
from picture.common.database import build_engine
from picture.common.ids import derived_id
from picture.common.messaging import Bus, QueryFailed
from picture.devstack.infra import NatsServer
from picture.devstack.ports import free_port
from picture.devstack.waiting import eventually
from picture.media.app import create_app
from picture.media.handlers import ProcessingOptions
from picture.media.settings import MediaSettings
from picture.media.tables import stored_objects


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(buffer, "PNG")
    return buffer.getvalue()


SOURCE_PNG = _png(3000, 1500)
SOURCE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" onload="alert(1)">'
    b'<script>alert(1)</script><rect width="100" height="100" fill="#0000ff"/></svg>'
)


class _SourceHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/image.png"):
            body, status, ctype = SOURCE_PNG, 200, "image/png"
        elif self.path.startswith("/image.svg"):
            body, status, ctype = SOURCE_SVG, 200, "image/svg+xml"
        elif self.path.startswith("/text"):
            body, status, ctype = b"not an image\n" * 20, 200, "text/plain"
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/image.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            body, status, ctype = b"", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def source_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _SourceHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class RunningMedia:
    settings: MediaSettings
    base_url: str
    bus: Bus
    events: asyncio.Queue[tuple[str, c.Envelope]]

    async def event_for(self, generation_id: uuid.UUID, timeout: float = 20) -> c.Envelope:
        async with asyncio.timeout(timeout):
            while True:
                subject, envelope = await self.events.get()
                if subject.endswith(str(generation_id)):
                    return envelope


@pytest.fixture(scope="module")
async def media(
    nats_server: NatsServer,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningMedia]:
    port = free_port()
    settings = MediaSettings(
        environment="test",
        nats_url=nats_server.url,
        database_url=database_url,
        http_port=port,
        storage_backend="filesystem",
        storage_dir=tmp_path_factory.mktemp("objects"),
        media_signing_key="test-signing-key-0123456789abcdef",
        media_public_url=f"http://127.0.0.1:{port}",
        download_allowed_hosts=("127.0.0.1",),
        download_allow_insecure_loopback=True,
        download_timeout_seconds=10,
    )
    app = create_app(settings, processing=ProcessingOptions(retry_delays=(0.05, 0.05)))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=20, what="media serving")
    bus = await Bus.connect(nats_server.url, "media-tests")
    events: asyncio.Queue[tuple[str, c.Envelope]] = asyncio.Queue()
    nc = await nats.connect(nats_server.url)

    async def on_event(msg: Msg) -> None:
        await events.put((msg.subject, c.Envelope.model_validate_json(msg.data)))

    await nc.subscribe("picture.evt.media.>", cb=on_event)
    try:
        yield RunningMedia(settings, f"http://127.0.0.1:{port}", bus, events)
    finally:
        await nc.drain()
        await bus.close()
        server.should_exit = True
        await task


def _ingest(url: str, **overrides: Any) -> c.IngestCommand:
    values: dict[str, Any] = {
        "generation_id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "attempt": 1,
        "source_urls": (url,),
    }
    values.update(overrides)
    return c.IngestCommand(**values)


async def _publish(media: RunningMedia, cmd: c.IngestCommand) -> c.Envelope:
    await media.bus.publish(c.INGEST, cmd)
    return await media.event_for(cmd.generation_id)


async def test_ingest_stores_webp_original_and_thumbnail(media: RunningMedia, source_server: str) -> None:
    cmd = _ingest(f"{source_server}/image.png")
    envelope = await _publish(media, cmd)
    assert envelope.type == c.MediaStoredEvent.TYPE
    assert envelope.id == derived_id("media.stored", cmd.generation_id, 1)
    event = envelope.open(c.MediaStoredEvent)
    assert event.attempt == 1
    by_role = {o.role: o for o in event.objects}
    original, thumbnail = by_role["original"], by_role["thumbnail"]
    assert original.key == f"{cmd.user_id}/{cmd.generation_id}/image.webp"
    assert thumbnail.key == f"{cmd.user_id}/{cmd.generation_id}/thumb.webp"
    assert (original.width, original.height) == (2048, 1024)
    assert (thumbnail.width, thumbnail.height) == (256, 128)
    root = Path(media.settings.storage_dir)
    for obj in (original, thumbnail):
        assert obj.content_type == "image/webp"
        data = (root / obj.key).read_bytes()
        assert len(data) == obj.size
        image = Image.open(io.BytesIO(data))
        assert image.format == "WEBP"
        assert image.size == (obj.width, obj.height)

    engine = build_engine(media.settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(stored_objects).where(stored_objects.c.generation_id == cmd.generation_id)
                )
            ).all()
    finally:
        await engine.dispose()
    assert {(r.key, r.role, r.sha256, r.owner_id) for r in rows} == {
        (o.key, o.role, o.sha256, cmd.user_id) for o in event.objects
    }


async def test_redelivery_overwrites_without_duplicates(media: RunningMedia, source_server: str) -> None:
    cmd = _ingest(f"{source_server}/image.png")
    first = (await _publish(media, cmd)).open(c.MediaStoredEvent)
    second = (await _publish(media, cmd.model_copy(update={"attempt": 2}))).open(c.MediaStoredEvent)
    assert [o.key for o in first.objects] == [o.key for o in second.objects]
    files = list((Path(media.settings.storage_dir) / str(cmd.user_id)).rglob("*"))
    assert sorted(p.name for p in files if p.is_file()) == ["image.webp", "thumb.webp"]


@pytest.mark.parametrize(
    ("path_or_url", "code"),
    [
        ("http://localhost:{port}/image.png", "host_not_allowed"),
        ("https://evil.example.com/image.png", "host_not_allowed"),
        ("{base}/text", "not_an_image"),
        ("{base}/redirect", "redirect_refused"),
        ("{base}/missing.png", "download_refused"),
    ],
)
async def test_permanent_failures_are_reported(
    media: RunningMedia, source_server: str, path_or_url: str, code: str
) -> None:
    port = source_server.rsplit(":", 1)[1]
    cmd = _ingest(path_or_url.format(base=source_server, port=port))
    envelope = await _publish(media, cmd)
    assert envelope.type == c.MediaFailedEvent.TYPE
    event = envelope.open(c.MediaFailedEvent)
    assert event.error.kind is c.ErrorKind.PERMANENT
    assert event.error.code == code
    assert event.error.message


async def test_unreachable_source_is_transient_after_retries(media: RunningMedia) -> None:
    cmd = _ingest(f"http://127.0.0.1:{free_port()}/image.png")
    envelope = await _publish(media, cmd)
    event = envelope.open(c.MediaFailedEvent)
    assert event.error.kind is c.ErrorKind.TRANSIENT
    assert event.error.code == "download_failed"


async def test_resolve_then_fetch_signed_url(media: RunningMedia, source_server: str) -> None:
    cmd = _ingest(f"{source_server}/image.png")
    stored = (await _publish(media, cmd)).open(c.MediaStoredEvent)
    original = next(o for o in stored.objects if o.role == "original")

    resolved = await media.bus.request(
        c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=original.key, expires_in_seconds=60)
    )
    assert resolved.disposition == "proxy"
    assert resolved.content_type == "image/webp"
    assert resolved.size == original.size
    assert resolved.etag == f'"{original.sha256}"'
    assert resolved.url.startswith(f"{media.base_url}/objects/{original.key}?")

    async with httpx.AsyncClient() as client:
        response = await client.get(resolved.url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["etag"] == resolved.etag
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in response.headers["cache-control"]
        data = (Path(media.settings.storage_dir) / original.key).read_bytes()
        assert response.content == data

        not_modified = await client.get(resolved.url, headers={"If-None-Match": resolved.etag})
        assert not_modified.status_code == 304
        assert not_modified.content == b""

        partial = await client.get(resolved.url, headers={"Range": "bytes=0-9"})
        assert partial.status_code == 206
        assert partial.content == data[:10]
        assert partial.headers["content-range"] == f"bytes 0-9/{len(data)}"

        url = httpx.URL(resolved.url)
        sig = url.params["sig"]
        tampered = url.copy_set_param("sig", ("0" if sig[0] != "0" else "1") + sig[1:])
        forbidden = await client.get(tampered)
        assert forbidden.status_code == 403
        assert forbidden.headers["content-type"] == "application/problem+json"
        assert forbidden.json()["status"] == 403

        other_key = url.copy_with(path=f"/objects/{original.key.replace('image', 'thumb')}")
        assert (await client.get(other_key)).status_code == 403

        expired = url.copy_set_param("expires", "1000")
        assert (await client.get(expired)).status_code == 403

        assert (await client.get(f"{media.base_url}/readyz")).status_code == 200
        metrics = (await client.get(f"{media.base_url}/metrics")).text
        assert "picture_media_downloads_total" in metrics


async def test_resolve_unknown_key_is_not_found(media: RunningMedia) -> None:
    with pytest.raises(QueryFailed) as info:
        await media.bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=f"{uuid.uuid4()}/x/image.webp"))
    assert info.value.code is c.QueryErrorCode.NOT_FOUND


async def test_resolve_invalid_key_is_invalid(media: RunningMedia) -> None:
    with pytest.raises(QueryFailed) as info:
        await media.bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key="../etc/passwd"))
    assert info.value.code is c.QueryErrorCode.INVALID


async def test_delete_objects_removes_files_and_rows(media: RunningMedia, source_server: str) -> None:
    cmd = _ingest(f"{source_server}/image.png")
    stored = (await _publish(media, cmd)).open(c.MediaStoredEvent)
    keys = tuple(o.key for o in stored.objects)
    root = Path(media.settings.storage_dir)
    delete = c.DeleteObjectsCommand(keys=(*keys, "../bad", f"{uuid.uuid4()}/gone.webp"))
    await media.bus.publish(c.DELETE_OBJECTS, delete)
    await media.bus.publish(c.DELETE_OBJECTS, c.DeleteObjectsCommand(keys=keys))  # again: no-op
    await eventually(lambda: not any((root / k).exists() for k in keys), what="the files deleted")

    async def resolvable() -> bool:
        try:
            await media.bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=keys[0]))
        except QueryFailed as exc:
            if exc.code is not c.QueryErrorCode.NOT_FOUND:
                raise
            return False
        return True

    async def unresolvable() -> bool:
        return not await resolvable()

    await eventually(unresolvable, what="the rows deleted")


async def test_generation_provenance_and_blurhash(media: RunningMedia, source_server: str) -> None:
    cmd = _ingest(f"{source_server}/image.png", model="flux-schnell", prompt="a red <barn>", seed=9)
    event = (await _publish(media, cmd)).open(c.MediaStoredEvent)
    original = next(o for o in event.objects if o.role == "original")
    assert original.blurhash is not None and len(original.blurhash) == 28
    data = (Path(media.settings.storage_dir) / original.key).read_bytes()
    xmp = bytes(Image.open(io.BytesIO(data)).info["xmp"]).decode()
    assert 'picture:model="flux-schnell"' in xmp
    assert 'picture:prompt="a red &lt;barn&gt;"' in xmp
    assert 'picture:seed="9"' in xmp


async def test_svg_output_is_sanitised_with_preview_and_served_safely(
    media: RunningMedia, source_server: str
) -> None:
    cmd = _ingest(f"{source_server}/image.svg")
    event = (await _publish(media, cmd)).open(c.MediaStoredEvent)
    by_role = {o.role: o for o in event.objects}
    assert set(by_role) == {"original", "thumbnail", "preview"}
    original = by_role["original"]
    assert original.key.endswith("/image.svg") and original.content_type == "image/svg+xml"
    stored = (Path(media.settings.storage_dir) / original.key).read_bytes()
    assert b"script" not in stored and b"onload" not in stored
    preview = Image.open(io.BytesIO((Path(media.settings.storage_dir) / by_role["preview"].key).read_bytes()))
    assert preview.format == "WEBP" and preview.size == (1024, 1024)
    pixel = preview.convert("RGB").getpixel((512, 512))
    assert isinstance(pixel, tuple) and pixel[2] > 200 and pixel[0] < 40  # the blue rect, drawn

    resolved = await media.bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=original.key))
    assert resolved.content_type == "image/svg+xml"
    async with httpx.AsyncClient() as http:
        response = await http.get(resolved.url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        response.headers["content-security-policy"]
        == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )
    assert response.headers["content-disposition"] == "attachment"


# ------------------------------------------------------------------------------- uploads

CATALOG: dict[str, Any] = {"fail": None, "requests": []}


@pytest.fixture(scope="module")
async def fake_catalog(media: RunningMedia) -> dict[str, Any]:
    """Answers RECORD_UPLOAD like the catalog, or fails as the test asks."""

    async def record_upload(req: c.RecordUploadRequest) -> c.ImageReply:
        CATALOG["requests"].append(req)
        if CATALOG["fail"] is not None:
            raise QueryFailed(CATALOG["fail"], "the catalog refused")
        original = next(o for o in req.objects if o.role == "original")
        thumbnail = next(o for o in req.objects if o.role == "thumbnail")
        return c.ImageReply(
            image=c.ImageView(
                id=req.image_id,
                generation_id=None,
                user_id=req.user_id,
                width=original.width,
                height=original.height,
                format="webp",
                file_size=original.size,
                content_key=original.key,
                thumbnail_key=thumbnail.key,
                created_at=datetime.now(UTC),
            )
        )

    await media.bus.serve(c.RECORD_UPLOAD, record_upload)
    return CATALOG


def _upload_headers(
    media: RunningMedia, user: uuid.UUID, name: str = "holiday%20photo.png"
) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {media.settings.internal_token}",
        "X-Picture-User-Id": str(user),
        "X-Picture-Filename": name,
    }


async def _object_rows(media: RunningMedia, user: uuid.UUID) -> list[Any]:
    engine = build_engine(media.settings.database_url)
    try:
        async with engine.connect() as conn:
            return list(
                (await conn.execute(select(stored_objects).where(stored_objects.c.owner_id == user))).all()
            )
    finally:
        await engine.dispose()


async def test_upload_is_processed_stored_and_recorded(
    media: RunningMedia, fake_catalog: dict[str, Any]
) -> None:
    fake_catalog["fail"] = None
    user = uuid.uuid4()
    async with httpx.AsyncClient(base_url=media.base_url) as http:
        response = await http.post(
            "/internal/uploads",
            content=_png(600, 400),
            headers=_upload_headers(media, user, "..%2F..%2Fetc%2Fx.png"),
        )
    assert response.status_code == 201, response.text
    image = response.json()
    upload_id = image["id"]
    assert image["content_key"] == f"{user}/uploads/{upload_id}/image.webp"
    assert image["thumbnail_key"] == f"{user}/uploads/{upload_id}/thumb.webp"
    request = fake_catalog["requests"][-1]
    assert request.filename == "x.png" and request.user_id == user
    root = Path(media.settings.storage_dir)
    assert Image.open(io.BytesIO((root / image["content_key"]).read_bytes())).format == "WEBP"
    assert {r.key for r in await _object_rows(media, user)} == {image["content_key"], image["thumbnail_key"]}


@pytest.mark.parametrize("code", [c.QueryErrorCode.UNAVAILABLE, c.QueryErrorCode.INVALID])
async def test_failed_catalog_step_leaves_no_object_or_row(
    media: RunningMedia, fake_catalog: dict[str, Any], code: c.QueryErrorCode
) -> None:
    fake_catalog["fail"] = code
    user = uuid.uuid4()
    try:
        async with httpx.AsyncClient(base_url=media.base_url) as http:
            response = await http.post(
                "/internal/uploads", content=_png(300, 300), headers=_upload_headers(media, user)
            )
    finally:
        fake_catalog["fail"] = None
    assert response.status_code == (503 if code is c.QueryErrorCode.UNAVAILABLE else 422), response.text
    request = fake_catalog["requests"][-1]
    assert request.user_id == user  # the catalog step was reached: objects had been stored
    assert not (Path(media.settings.storage_dir) / str(user)).exists() or not [
        p for p in (Path(media.settings.storage_dir) / str(user)).rglob("*") if p.is_file()
    ]
    assert await _object_rows(media, user) == []


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"GIF89a" + b"\x00" * 100, {}, 422),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", {}, 422),
        (b"just text, not an image", {}, 422),
        (b"", {}, 422),
        (b"x" * (10 * 1024 * 1024 + 1), {}, 413),
        (b"\x89PNG", {"Authorization": "Bearer wrong"}, 401),
        (b"\x89PNG", {"Authorization": ""}, 401),
        (b"\x89PNG", {"X-Picture-User-Id": "not-a-uuid"}, 422),
    ],
)
async def test_uploads_refused(
    media: RunningMedia, fake_catalog: dict[str, Any], body: bytes, headers: dict[str, str], status: int
) -> None:
    user = uuid.uuid4()
    sent = {**_upload_headers(media, user), **headers}
    before = len(fake_catalog["requests"])
    async with httpx.AsyncClient(base_url=media.base_url) as http:
        response = await http.post("/internal/uploads", content=body, headers=sent)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert len(fake_catalog["requests"]) == before
    assert not (Path(media.settings.storage_dir) / str(user)).exists()


async def test_import_stores_under_the_generation_keys_and_again_overwrites(media: RunningMedia) -> None:
    user, generation = uuid.uuid4(), uuid.uuid4()
    headers = {**_upload_headers(media, user), "X-Picture-Generation-Id": str(generation)}
    async with httpx.AsyncClient(base_url=media.base_url) as http:
        first = await http.post("/internal/imports", content=_png(500, 300), headers=headers)
        again = await http.post("/internal/imports", content=_png(500, 300), headers=headers)
        refused = await http.post(
            "/internal/imports", content=_png(10, 10), headers={**headers, "X-Picture-Image-Id": str(user)}
        )
    assert first.status_code == again.status_code == 200, first.text
    assert refused.status_code == 422  # a generation and an image id: which keys?
    objects = {o["role"]: o for o in first.json()["objects"]}
    assert objects["original"]["key"] == f"{user}/{generation}/image.webp"
    assert objects["original"]["blurhash"] and len(objects["original"]["sha256"]) == 64
    assert objects["thumbnail"]["key"] == f"{user}/{generation}/thumb.webp"
    assert first.json() == again.json()
    rows = await _object_rows(media, user)
    assert sorted(r.key for r in rows) == sorted(o["key"] for o in objects.values())
