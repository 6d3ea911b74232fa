"""Object storage behind one interface, with a filesystem and an S3 backend.

:class:`ObjectStorage` is what the rest of the service uses. Keys are made by the server
(``<user_id>/<generation_id>/image.webp``); :func:`validate_key` still refuses anything that
could escape a prefix (``..``, absolute paths, backslashes, empty segments) in every backend.

- :class:`FilesystemStorage`: files under a root folder, written to a temporary file and
  moved into place with ``os.replace`` (readers never see half a file). Its URLs point at this
  service's own ``GET /objects/{key}``, signed with an HMAC and expiring (``disposition``
  "proxy": the gateway streams the bytes).
- :class:`S3Storage`: any S3 API (AWS, MinIO, moto) through aioboto3; objects are written with
  their content type and an immutable cache policy; URLs are presigned GETs (``disposition``
  "redirect": clients fetch from the bucket directly).
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from picture.media.errors import InvalidKeyError
from picture.media.signing import UrlSigner

CACHE_CONTROL = "public, max-age=31536000, immutable"
CHUNK_SIZE = 64 * 1024
MAX_KEY_LENGTH = 512
LIST_CHUNK = 1000  # keys read from disk per thread hop when listing

Disposition = Literal["redirect", "proxy"]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str


class ObjectNotFoundError(KeyError):
    """No object under this key."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise InvalidKeyError."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError("object keys are 1 to 512 characters")
    if key.startswith("/") or "\\" in key or "\x00" in key or ":" in key.split("/", 1)[0]:
        raise InvalidKeyError(f"invalid object key {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidKeyError(f"invalid object key {key!r}")
    if any(not ch.isprintable() for ch in key):
        raise InvalidKeyError("object keys may not contain control characters")
    return key


def _is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidKeyError:
        return False
    return True


class ObjectStorage(Protocol):
    """Where object bytes live."""

    @property
    def disposition(self) -> Disposition:
        """How clients get an object: "redirect" to ``url()``, or "proxy" through us."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store (or overwrite) an object."""
        ...

    async def get(self, key: str) -> bytes:
        """The whole object; raises ObjectNotFoundError."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The object in chunks, for streaming; raises ObjectNotFoundError."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and type of an object, or None when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; no error when it does not exist (idempotent)."""
        ...

    async def url(self, key: str, expires_in: int) -> str:
        """A URL to GET the object that stops working after ``expires_in`` seconds."""
        ...

    def list_older_than(self, cutoff: datetime) -> AsyncIterator[str]:
        """The keys of objects last written before ``cutoff``, in key order (so the objects
        of one folder come together)."""
        ...


# ------------------------------------------------------------------------------- filesystem


class FilesystemStorage:
    """Objects as files under ``root``; content type from the key's extension."""

    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root.resolve()
        self.signer = signer

    @property
    def disposition(self) -> Disposition:
        return "proxy"

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKeyError(f"invalid object key {key!r}")
        return path

    @staticmethod
    def content_type_of(key: str) -> str:
        if key.endswith(".webp"):
            return "image/webp"
        return mimetypes.guess_type(key)[0] or "application/octet-stream"

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self.path_for(key), data)

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(key) from exc

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(key) from exc
        try:
            while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
                yield chunk
        finally:
            file.close()

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            result = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, result.st_size, self.content_type_of(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)

    async def url(self, key: str, expires_in: int) -> str:
        return self.signer.url(validate_key(key), expires_in)

    def _scan(self, cutoff: float) -> Iterator[str]:
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                try:
                    modified = path.stat().st_mtime
                except FileNotFoundError:
                    continue  # deleted meanwhile
                key = path.relative_to(self.root).as_posix()
                if modified < cutoff and _is_valid_key(key):
                    yield key

    async def list_older_than(self, cutoff: datetime) -> AsyncIterator[str]:
        scan = self._scan(cutoff.timestamp())
        while chunk := await asyncio.to_thread(lambda: list(itertools.islice(scan, LIST_CHUNK))):
            for key in chunk:
                yield key


# ------------------------------------------------------------------------------------- S3


class S3Storage:
    """Objects in one S3 bucket; ``client`` is an open aioboto3 S3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @property
    def disposition(self) -> Disposition:
        return "redirect"

    @staticmethod
    def _missing(exc: Exception) -> bool:
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        return code in ("404", "NoSuchKey", "NotFound")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        extra: dict[str, str] = {}
        if content_type == "image/svg+xml":
            # Served from the bucket's origin too: never rendered inline there either.
            extra["ContentDisposition"] = "attachment"
        await self.client.put_object(
            Bucket=self.bucket,
            Key=validate_key(key),
            Body=data,
            ContentType=content_type,
            CacheControl=CACHE_CONTROL,
            **extra,
        )

    async def get(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.open(key)])

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=validate_key(key))
        except Exception as exc:
            if self._missing(exc):
                raise ObjectNotFoundError(key) from exc
            raise
        body = response["Body"]
        try:
            while chunk := await body.read(CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        content_type = str(head.get("ContentType", "application/octet-stream"))
        return ObjectInfo(key, int(head["ContentLength"]), content_type)

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    async def list_older_than(self, cutoff: datetime) -> AsyncIterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket):
            for item in page.get("Contents", ()):
                if item["LastModified"] < cutoff:
                    yield str(item["Key"])

    async def url(self, key: str, expires_in: int) -> str:
        url = await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": validate_key(key)},
            ExpiresIn=expires_in,
        )
        return str(url)


async def open_s3_client(
    stack: AsyncExitStack,
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> Any:
    """An aioboto3 S3 client whose lifetime is ``stack``'s."""
    import aioboto3  # type: ignore[import-untyped]

    session = aioboto3.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    return await stack.enter_async_context(session.client("s3", endpoint_url=endpoint_url))
