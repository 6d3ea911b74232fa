"""The gateway's tables, in its own schema ``gateway``."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, String, Table, Uuid, func

from picture.common.database import schema_metadata

metadata = schema_metadata("gateway")

# Idempotency-Key of POST /v1/generations: same key and body -> same generation.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("generation_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "key"),
)
