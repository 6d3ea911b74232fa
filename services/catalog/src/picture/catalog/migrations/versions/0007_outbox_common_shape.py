"""The catalog's outbox takes the shared shape (picture.common.outbox): delay and trace context.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column("trace_context", postgresql.JSONB, nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.add_column(
        "outbox",
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.execute("UPDATE catalog.outbox SET available_at = created_at")
    op.drop_index("ix_outbox_pending", table_name="outbox", schema=SCHEMA)
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["available_at"],
        postgresql_where=sa.text("published_at IS NULL"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox", schema=SCHEMA)
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
        schema=SCHEMA,
    )
    op.drop_column("outbox", "available_at", schema=SCHEMA)
    op.drop_column("outbox", "trace_context", schema=SCHEMA)
