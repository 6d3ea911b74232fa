"""Predictions.

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

SCHEMA = "adapter"


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("generation_id", sa.Uuid, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("prediction_id", sa.String(64), unique=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("replicate_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("input", postgresql.JSONB, nullable=False),
        sa.Column("output", postgresql.JSONB),
        sa.Column("error", sa.Text),
        sa.Column("error_code", sa.String(64)),
        sa.Column("predict_time_seconds", sa.Float),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("terminal", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("generation_id", "attempt", name="uq_predictions_generation_attempt"),
        schema=SCHEMA,
    )
    # The poller's restart query: predictions still running.
    op.create_index(
        "ix_predictions_active",
        "predictions",
        ["created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT terminal AND prediction_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("predictions", schema=SCHEMA)
