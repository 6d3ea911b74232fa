"""Predictions: when our create requests for an attempt were in flight, so an uncertain create
is matched only to a prediction Replicate created in that window (see docs/adr/0012).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "adapter"


def upgrade() -> None:
    op.add_column("predictions", sa.Column("create_sent_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("predictions", sa.Column("create_settled_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.create_index(
        "ix_predictions_open_creates",
        "predictions",
        ["request_hash"],
        schema=SCHEMA,
        postgresql_where=sa.text("prediction_id IS NULL AND create_sent_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_predictions_open_creates", "predictions", schema=SCHEMA)
    op.drop_column("predictions", "create_settled_at", schema=SCHEMA)
    op.drop_column("predictions", "create_sent_at", schema=SCHEMA)
