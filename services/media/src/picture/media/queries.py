"""Read side: media's answers to other services' queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.contracts import QueryErrorCode, ResolvedObject, ResolveObjectRequest
from picture.common.messaging import QueryFailed
from picture.media.errors import InvalidKeyError
from picture.media.storage import ObjectStorage, validate_key
from picture.media.tables import stored_objects

MIN_EXPIRY_SECONDS = 1
MAX_EXPIRY_SECONDS = 7 * 86400


async def resolve_object(
    engine: AsyncEngine, storage: ObjectStorage, req: ResolveObjectRequest
) -> ResolvedObject:
    """A short-lived URL of a stored object, with its type, size and etag."""
    try:
        key = validate_key(req.key)
    except InvalidKeyError as exc:
        raise QueryFailed(QueryErrorCode.INVALID, str(exc), field="key") from exc
    if not MIN_EXPIRY_SECONDS <= req.expires_in_seconds <= MAX_EXPIRY_SECONDS:
        raise QueryFailed(
            QueryErrorCode.INVALID,
            f"expires_in_seconds must be between {MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}",
            field="expires_in_seconds",
        )
    async with engine.connect() as conn:
        row = (await conn.execute(select(stored_objects).where(stored_objects.c.key == key))).first()
    if row is None:
        raise QueryFailed(QueryErrorCode.NOT_FOUND, "object not found", field="key")
    return ResolvedObject(
        url=await storage.url(key, req.expires_in_seconds),
        disposition=storage.disposition,
        content_type=row.content_type,
        size=row.size,
        etag=f'"{row.sha256}"',
    )
