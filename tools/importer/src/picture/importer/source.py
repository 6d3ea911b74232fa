"""Reading the old product: its tables over a database URL, its objects from a directory or
from S3 (Supabase storage speaks the S3 API; any S3 endpoint with the buckets works).

Tables are read whole with ``SELECT *`` (the old schema had optional columns that came and went;
the plan reads what is there by name). A table that does not exist is an empty one, reported.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

TABLES = (
    "profiles",
    "tags",
    "prompt_templates",
    "batch_generations",
    "image_generations",
    "images",
    "image_tags",
    "image_likes",
    "user_rate_limits",
)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def async_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` URLs (as Supabase gives them) for asyncpg."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


async def read_tables(
    url: str, schema: str = "public"
) -> tuple[dict[str, Sequence[Mapping[str, Any]]], list[str]]:
    """Every old table's rows (as mappings), and the names of the tables that are missing."""
    if not IDENTIFIER.match(schema):
        raise ValueError(f"not a schema name: {schema!r}")
    engine = create_async_engine(async_url(url))
    tables: dict[str, Sequence[Mapping[str, Any]]] = {}
    missing: list[str] = []
    try:
        for table in TABLES:
            try:
                async with engine.connect() as conn:
                    result = await conn.execute(text(f'SELECT * FROM "{schema}"."{table}"'))  # noqa: S608 - checked names
                    tables[table] = [dict(row) for row in result.mappings()]
            except ProgrammingError:
                missing.append(table)
                tables[table] = []
    finally:
        await engine.dispose()
    return tables, missing


class ObjectSource(Protocol):
    """Where the old buckets are. A path is ``<bucket>/<key>`` (``generated-images/u/g.png``)."""

    async def find(self, paths: Sequence[str]) -> str | None:
        """The first of ``paths`` that exists."""
        ...

    async def read(self, paths: Sequence[str]) -> bytes | None:
        """The bytes of the first of ``paths`` that exists; None when none does."""
        ...


class DirectoryObjects:
    """The old buckets as folders: ``<root>/generated-images/...``, ``<root>/user-uploads/...``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, relative: str) -> Path | None:
        candidate = (self.root / relative.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root):  # a stored path that climbs out of the root
            return None
        return candidate if candidate.is_file() else None

    async def find(self, paths: Sequence[str]) -> str | None:
        return next((p for p in paths if self._path(p) is not None), None)

    async def read(self, paths: Sequence[str]) -> bytes | None:
        found = await self.find(paths)
        if found is None:
            return None
        path = self._path(found)
        assert path is not None
        return await asyncio.to_thread(path.read_bytes)


class S3Objects:
    """The old buckets in S3: the first segment of a path is the bucket. ``client`` is an open
    aioboto3 S3 client. A path whose bucket or key does not exist is simply not there."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @staticmethod
    def _split(path: str) -> tuple[str, str] | None:
        bucket, _, key = path.lstrip("/").partition("/")
        return (bucket, key) if bucket and key else None

    async def _exists(self, path: str) -> bool:
        where = self._split(path)
        if where is None:
            return False
        try:
            await self.client.head_object(Bucket=where[0], Key=where[1])
        except Exception as exc:  # botocore's ClientError: 404, no such bucket, invalid name
            if _status(exc) in (400, 403, 404):
                return False
            raise
        return True

    async def find(self, paths: Sequence[str]) -> str | None:
        for path in paths:
            if await self._exists(path):
                return path
        return None

    async def read(self, paths: Sequence[str]) -> bytes | None:
        found = await self.find(paths)
        if found is None:
            return None
        where = self._split(found)
        assert where is not None
        response = await self.client.get_object(Bucket=where[0], Key=where[1])
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None
