"""The ObjectStorage contract, run against both backends (filesystem, S3 via moto)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from picture.media.errors import InvalidKeyError
from picture.media.signing import UrlSigner
from picture.media.storage import (
    FilesystemStorage,
    ObjectNotFoundError,
    ObjectStorage,
    S3Storage,
    validate_key,
)

S3_BUCKET = "picture-test"
SIGNER = UrlSigner(b"k" * 32, "http://media.test")


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest, objects_dir: Path) -> ObjectStorage:
    if request.param == "filesystem":
        return FilesystemStorage(objects_dir, SIGNER)
    client: Any = request.getfixturevalue("s3_client")
    return S3Storage(client, S3_BUCKET)


def _key(name: str) -> str:
    return f"user-{time.monotonic_ns()}/gen/{name}"


async def test_put_stat_get_delete(storage: ObjectStorage) -> None:
    key = _key("image.webp")
    assert await storage.stat(key) is None
    await storage.put(key, b"RIFF....WEBPdata", "image/webp")
    info = await storage.stat(key)
    assert info is not None
    assert (info.key, info.size, info.content_type) == (key, 16, "image/webp")
    assert await storage.get(key) == b"RIFF....WEBPdata"
    assert b"".join([c async for c in storage.open(key)]) == b"RIFF....WEBPdata"
    await storage.delete(key)
    assert await storage.stat(key) is None
    with pytest.raises(ObjectNotFoundError):
        await storage.get(key)


async def test_overwrite_replaces_the_bytes(storage: ObjectStorage) -> None:
    key = _key("thumb.webp")
    await storage.put(key, b"first version", "image/webp")
    await storage.put(key, b"second", "image/webp")
    assert await storage.get(key) == b"second"
    info = await storage.stat(key)
    assert info is not None
    assert info.size == 6


async def test_large_objects_stream_in_chunks(storage: ObjectStorage) -> None:
    key = _key("image.webp")
    data = bytes(range(256)) * 1024  # 256 KiB
    await storage.put(key, data, "image/webp")
    chunks = [c async for c in storage.open(key)]
    assert b"".join(chunks) == data
    await storage.delete(key)


async def test_delete_is_idempotent(storage: ObjectStorage) -> None:
    key = _key("image.webp")
    await storage.delete(key)
    await storage.put(key, b"x", "image/webp")
    await storage.delete(key)
    await storage.delete(key)
    assert await storage.stat(key) is None


async def test_missing_object_cannot_be_opened(storage: ObjectStorage) -> None:
    with pytest.raises(ObjectNotFoundError):
        _ = [c async for c in storage.open(_key("nothing.webp"))]


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape.webp",
    "a/../../escape.webp",
    "a/./b.webp",
    "a//b.webp",
    "a/b/",
    "a\\..\\b.webp",
    "a/b\x00.webp",
    "c:/windows.webp",
    "x" * 600,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_are_refused(storage: ObjectStorage, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        await storage.put(key, b"x", "image/webp")
    with pytest.raises(InvalidKeyError):
        await storage.stat(key)
    with pytest.raises(InvalidKeyError):
        await storage.delete(key)
    with pytest.raises(InvalidKeyError):
        await storage.url(key, 60)


def test_valid_keys() -> None:
    key = "0190f1b2-0000-7000-8000-000000000000/0190f1b2-0000-7000-8000-000000000001/image.webp"
    assert validate_key(key) == key


async def test_filesystem_writes_atomically_without_leftovers(objects_dir: Path) -> None:
    storage = FilesystemStorage(objects_dir, SIGNER)
    await storage.put("u/g/image.webp", b"abc", "image/webp")
    await storage.put("u/g/image.webp", b"abcd", "image/webp")
    assert sorted(p.name for p in (objects_dir / "u" / "g").iterdir()) == ["image.webp"]


async def test_filesystem_url_is_signed_and_expires(objects_dir: Path) -> None:
    storage = FilesystemStorage(objects_dir, SIGNER)
    assert storage.disposition == "proxy"
    url = httpx.URL(await storage.url("u/g/image.webp", 300))
    assert str(url).startswith("http://media.test/objects/u/g/image.webp?")
    expires = int(url.params["expires"])
    assert time.time() + 290 < expires <= time.time() + 301
    assert SIGNER.verify("u/g/image.webp", expires, url.params["sig"])
    assert not SIGNER.verify("u/g/thumb.webp", expires, url.params["sig"])
    assert not SIGNER.verify("u/g/image.webp", expires + 1, url.params["sig"])
    assert not SIGNER.verify("u/g/image.webp", expires, url.params["sig"], now=expires + 1)


async def test_s3_presigned_url_serves_the_object(s3_client: Any) -> None:
    storage = S3Storage(s3_client, S3_BUCKET)
    assert storage.disposition == "redirect"
    key = _key("image.webp")
    await storage.put(key, b"presigned bytes", "image/webp")
    head = await s3_client.head_object(Bucket=S3_BUCKET, Key=key)
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    url = await storage.url(key, 60)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"presigned bytes"
    assert response.headers["content-type"] == "image/webp"


async def test_s3_objects_carry_type_cache_policy_and_etag(s3_client: Any) -> None:
    storage = S3Storage(s3_client, S3_BUCKET)
    webp, svg = _key("image.webp"), _key("image.svg")
    await storage.put(webp, b"webp bytes", "image/webp")
    await storage.put(svg, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")
    head = await s3_client.head_object(Bucket=S3_BUCKET, Key=webp)
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ETag"].strip('"') and "ContentDisposition" not in head
    head = await s3_client.head_object(Bucket=S3_BUCKET, Key=svg)
    assert head["ContentType"] == "image/svg+xml"
    assert head["ContentDisposition"] == "attachment"


async def test_filesystem_content_types_by_key(objects_dir: Path) -> None:
    storage = FilesystemStorage(objects_dir, SIGNER)
    for key, expected in ((_key("image.webp"), "image/webp"), (_key("image.svg"), "image/svg+xml")):
        await storage.put(key, b"x", expected)
        info = await storage.stat(key)
        assert info is not None and info.content_type == expected


async def test_list_older_than_gives_old_keys_in_key_order(storage: ObjectStorage) -> None:
    prefix = f"user-{time.monotonic_ns()}"
    keys = [f"{prefix}/b/thumb.webp", f"{prefix}/a/image.webp", f"{prefix}/a/thumb.webp"]
    for key in keys:
        await storage.put(key, b"x", "image/webp")
    future = datetime.now(UTC) + timedelta(minutes=5)
    listed = [key async for key in storage.list_older_than(future) if key.startswith(prefix)]
    assert listed == sorted(keys)
    past = datetime.now(UTC) - timedelta(minutes=5)
    assert [key async for key in storage.list_older_than(past) if key.startswith(prefix)] == []
