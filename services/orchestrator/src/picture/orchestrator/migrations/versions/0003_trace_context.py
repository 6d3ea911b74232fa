"""Trace context of the accepting request, kept with the generation (observability).

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

SCHEMA = "orchestrator"


def upgrade() -> None:
    op.add_column("generations", sa.Column("trace_context", postgresql.JSONB()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("generations", "trace_context", schema=SCHEMA)
