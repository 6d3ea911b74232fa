"""Stored objects.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "media"


def upgrade() -> None:
    op.create_table(
        "stored_objects",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("owner_id", sa.Uuid, nullable=False),
        sa.Column("generation_id", sa.Uuid),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_stored_objects_generation_id", "stored_objects", ["generation_id"], schema=SCHEMA)
    op.create_index("ix_stored_objects_owner_id", "stored_objects", ["owner_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("stored_objects", schema=SCHEMA)
