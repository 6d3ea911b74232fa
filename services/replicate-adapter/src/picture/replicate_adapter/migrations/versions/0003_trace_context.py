"""Predictions: the trace context of the predict command (observability).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "adapter"


def upgrade() -> None:
    op.add_column("predictions", sa.Column("trace_context", postgresql.JSONB()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("predictions", "trace_context", schema=SCHEMA)
