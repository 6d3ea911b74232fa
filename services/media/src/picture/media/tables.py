"""The media service's tables, in its own schema ``media``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, String, Table, Uuid, func

from picture.common.database import schema_metadata

metadata = schema_metadata("media")

stored_objects = Table(
    "stored_objects",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("owner_id", Uuid, nullable=False, index=True),
    Column("generation_id", Uuid, index=True),
    Column("role", String(16), nullable=False),
    Column("content_type", String(128), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
