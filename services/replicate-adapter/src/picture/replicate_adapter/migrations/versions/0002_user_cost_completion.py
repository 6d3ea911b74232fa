"""Predictions: user_id (cost totals per user) and completed_via (webhook or poll).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "adapter"


def upgrade() -> None:
    op.add_column("predictions", sa.Column("user_id", sa.Uuid), schema=SCHEMA)
    op.add_column("predictions", sa.Column("completed_via", sa.String(16)), schema=SCHEMA)
    # Cost totals: by day (created_at) for everyone, or one user's.
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"], schema=SCHEMA)
    op.create_index("ix_predictions_user_created", "predictions", ["user_id", "created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_predictions_user_created", "predictions", schema=SCHEMA)
    op.drop_index("ix_predictions_created_at", "predictions", schema=SCHEMA)
    op.drop_column("predictions", "completed_via", schema=SCHEMA)
    op.drop_column("predictions", "user_id", schema=SCHEMA)
