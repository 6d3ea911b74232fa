"""Predictions: which replica polls a prediction (owner) and until when its lease holds
(owned_until). Replicas renew their leases by heartbeat and take over expired ones, so each
active prediction is polled by exactly one live replica (see docs/adr/0018).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "adapter"


def upgrade() -> None:
    op.add_column("predictions", sa.Column("owner", sa.String(128)), schema=SCHEMA)
    op.add_column("predictions", sa.Column("owned_until", sa.DateTime(timezone=True)), schema=SCHEMA)
    # Renewal (by owner) and takeover (by expiry) look only at predictions still followed.
    op.create_index(
        "ix_predictions_polled",
        "predictions",
        ["owner", "owned_until"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT terminal AND prediction_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_predictions_polled", "predictions", schema=SCHEMA)
    op.drop_column("predictions", "owned_until", schema=SCHEMA)
    op.drop_column("predictions", "owner", schema=SCHEMA)
