"""The service end to end: real NATS and PostgreSQL, a local source server, the app in uvicorn."""

from __future__ import annotations

import asyncio
import io
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
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
from picture.media.app import create_app
from picture.media.handlers import ProcessingOptions
from picture.media.settings import MediaSettings
from picture.media.tables import stored_objects


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(buffer, "PNG")
    return buffer.getvalue()


SOURCE_PNG = _png(3000, 1500)


class _SourceHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/image.png"):
            body, status, ctype = SOURCE_PNG, 200, "image/png"
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
    async with asyncio.timeout(20):
        while not server.started:
            await asyncio.sleep(0.05)
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
    async with asyncio.timeout(10):
        while any((root / k).exists() for k in keys):
            await asyncio.sleep(0.05)

    async def resolvable() -> bool:
        try:
            await media.bus.request(c.RESOLVE_OBJECT, c.ResolveObjectRequest(key=keys[0]))
        except QueryFailed as exc:
            if exc.code is not c.QueryErrorCode.NOT_FOUND:
                raise
            return False
        return True

    async with asyncio.timeout(10):
        while await resolvable():
            await asyncio.sleep(0.05)
