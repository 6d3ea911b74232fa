"""Indexes on the images' storage keys: media's sweep asks which keys an image points at.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_index("ix_images_content_key", "images", ["content_key"], schema=SCHEMA)
    op.create_index(
        "ix_images_thumbnail_key",
        "images",
        ["thumbnail_key"],
        schema=SCHEMA,
        postgresql_where="thumbnail_key IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_images_thumbnail_key", "images", schema=SCHEMA)
    op.drop_index("ix_images_content_key", "images", schema=SCHEMA)
