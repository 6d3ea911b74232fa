"""Idempotency-Key: the same key and body -> the same resource; another body -> 409.

A key is bound once per user to the id of what it created (a generation or a batch), with a
hash of the request (its kind and body) so a key reused for a different request is refused.
"""

from __future__ import annotations

import hashlib
import uuid

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.ids import uuid7
from picture.gateway.errors import Conflict
from picture.gateway.tables import idempotency_keys


async def bind(
    engine: AsyncEngine, user_id: uuid.UUID, key: str | None, kind: str, body: BaseModel
) -> uuid.UUID:
    """A new id, or the id this user's ``key`` is already bound to (409 if the request differs).

    ``kind`` names the endpoint: a key used for a generation cannot replay as a batch.
    """
    new_id = uuid7()
    if key is None:
        return new_id
    # generations hash the bare body (as keys stored before batches took keys); others prefix
    prefix = "" if kind == "generation" else f"{kind}:"
    request_hash = hashlib.sha256(f"{prefix}{body.model_dump_json()}".encode()).hexdigest()
    async with engine.begin() as conn:
        await conn.execute(
            insert(idempotency_keys)
            .values(user_id=user_id, key=key, request_hash=request_hash, generation_id=new_id)
            .on_conflict_do_nothing()
        )
        row = (
            await conn.execute(
                select(idempotency_keys.c.request_hash, idempotency_keys.c.generation_id).where(
                    idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
                )
            )
        ).one()
    if row.request_hash != request_hash:
        raise Conflict("this Idempotency-Key was used with a different request body")
    bound: uuid.UUID = row.generation_id
    return bound
