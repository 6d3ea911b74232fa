"""Explore search, newest first: the recency index carries the prompt's text vector.

Revision ID: 0005
Revises: 0004

A search sorted by recency walks the public images newest first and keeps the matching ones.
With the vector in the index (INCLUDE), that walk is an index-only scan over a compact index
instead of a heap page per candidate (~4,000 candidates for two common words at 1M images);
the matching ids are then fetched by key. The plain recency order uses the same index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "catalog"
EXPLORE = sa.text("is_public AND archived_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_images_explore_recent_search",
        "images",
        [sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_include=["search"],
        postgresql_where=EXPLORE,
        schema=SCHEMA,
    )
    op.drop_index("ix_images_explore_recent", "images", schema=SCHEMA)


def downgrade() -> None:
    op.create_index(
        "ix_images_explore_recent",
        "images",
        [sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=EXPLORE,
        schema=SCHEMA,
    )
    op.drop_index("ix_images_explore_recent_search", "images", schema=SCHEMA)
