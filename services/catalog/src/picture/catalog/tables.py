"""The catalog's tables, in its own schema ``catalog``."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from picture.common.database import schema_metadata
from picture.common.outbox import outbox_table

metadata = schema_metadata("catalog")

models = Table(
    "models",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("display_name", String(128), nullable=False),
    Column("replicate_id", String(128), nullable=False),
    Column("version", String(128)),
    Column("description", Text, nullable=False, server_default=""),
    Column("default_width", Integer, nullable=False),
    Column("default_height", Integer, nullable=False),
    Column("min_width", Integer, nullable=False),
    Column("max_width", Integer, nullable=False),
    Column("min_height", Integer, nullable=False),
    Column("max_height", Integer, nullable=False),
    Column("default_steps", Integer),
    Column("max_steps", Integer, nullable=False),
    Column("default_guidance_scale", Float),
    Column("default_strength", Float),
    Column("strength_min", Float, nullable=False, server_default="0"),
    Column("strength_max", Float, nullable=False, server_default="1"),
    # What the model's Replicate input takes.
    Column("supports_steps", Boolean, nullable=False, server_default="true"),
    Column("supports_guidance", Boolean, nullable=False, server_default="true"),
    Column("guidance_min", Float, nullable=False, server_default="0"),
    Column("guidance_max", Float, nullable=False, server_default="50"),
    Column("supports_strength", Boolean, nullable=False, server_default="true"),
    Column("max_seed", BigInteger, nullable=False, server_default=str(2**32 - 1)),
    Column("supports_negative_prompt", Boolean, nullable=False),
    Column("supports_seed", Boolean, nullable=False),
    Column("supports_img2img", Boolean, nullable=False),
    Column("supported_aspect_ratios", ARRAY(String(8)), nullable=False, server_default="{}"),
    Column("cost_per_generation", Float, nullable=False),
    Column("estimated_time_seconds", Float, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    Column("is_default", Boolean, nullable=False, server_default="false"),
    Column("sort_order", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

images = Table(
    "images",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("generation_id", Uuid, unique=True),
    Column("source_image_id", Uuid),
    Column("filename", String(255), nullable=False),
    Column("content_key", String(512), nullable=False),
    Column("thumbnail_key", String(512)),
    Column("file_size", BigInteger, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("negative_prompt", Text),
    Column("model", String(64)),
    Column("seed", BigInteger),
    Column("is_public", Boolean, nullable=False, server_default="false"),
    Column("is_favorite", Boolean, nullable=False, server_default="false"),
    Column("rating", SmallInteger),
    Column("download_count", Integer, nullable=False, server_default="0"),
    Column("blurhash", String(64)),
    Column("archived_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("like_count", Integer, nullable=False, server_default="0"),
    Column("popularity", Integer, Computed("like_count + download_count", persisted=True)),
    Column("search", TSVECTOR, Computed("to_tsvector('english'::regconfig, prompt)", persisted=True)),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320)),
    Column("username", String(32)),
    Column("avatar_url", String(1000)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tags = Table(
    "tags",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("color", String(7), nullable=False, server_default="#6b7280"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

image_tags = Table(
    "image_tags",
    metadata,
    Column("image_id", Uuid, ForeignKey("catalog.images.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", BigInteger, ForeignKey("catalog.tags.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("user_id", Uuid, nullable=False),  # the image's owner (immutable): the gallery's tag filter
)

image_likes = Table(
    "image_likes",
    metadata,
    Column("image_id", Uuid, ForeignKey("catalog.images.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Uuid, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

prompt_templates = Table(
    "prompt_templates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("name", String(100), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("negative_prompt", Text),
    Column("category", String(50)),
    Column("is_public", Boolean, nullable=False, server_default="false"),
    Column("use_count", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

template_uses = Table(
    "template_uses",
    metadata,
    Column(
        "template_id", Uuid, ForeignKey("catalog.prompt_templates.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("generation_id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
