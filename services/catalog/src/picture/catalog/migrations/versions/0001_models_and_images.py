"""Models and images.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("replicate_id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128)),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("default_width", sa.Integer, nullable=False),
        sa.Column("default_height", sa.Integer, nullable=False),
        sa.Column("min_width", sa.Integer, nullable=False),
        sa.Column("max_width", sa.Integer, nullable=False),
        sa.Column("min_height", sa.Integer, nullable=False),
        sa.Column("max_height", sa.Integer, nullable=False),
        sa.Column("default_steps", sa.Integer),
        sa.Column("max_steps", sa.Integer, nullable=False),
        sa.Column("default_guidance_scale", sa.Float),
        sa.Column("supports_negative_prompt", sa.Boolean, nullable=False),
        sa.Column("supports_seed", sa.Boolean, nullable=False),
        sa.Column("supports_img2img", sa.Boolean, nullable=False),
        sa.Column(
            "supported_aspect_ratios",
            postgresql.ARRAY(sa.String(8)),
            nullable=False,
            server_default="{}",
        ),
        sa.Column("cost_per_generation", sa.Float, nullable=False),
        sa.Column("estimated_time_seconds", sa.Float, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("sort_order", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("generation_id", sa.Uuid, unique=True),
        sa.Column("source_image_id", sa.Uuid),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_key", sa.String(512), nullable=False),
        sa.Column("thumbnail_key", sa.String(512)),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("negative_prompt", sa.Text),
        sa.Column("model", sa.String(64)),
        sa.Column("seed", sa.BigInteger),
        sa.Column("is_public", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("is_favorite", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("rating", sa.SmallInteger),
        sa.Column("download_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("blurhash", sa.String(64)),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 0 AND 5", name="rating_range"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_images_user_created",
        "images",
        ["user_id", sa.text("created_at DESC"), sa.text("id DESC")],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("images", schema=SCHEMA)
    op.drop_table("models", schema=SCHEMA)
