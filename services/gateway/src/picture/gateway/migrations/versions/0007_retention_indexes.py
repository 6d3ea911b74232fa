"""Partial indexes for the retention jobs: failed read-model rows by the time they were
written, delivered webhook deliveries by the time they were delivered.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_index(
        "ix_generation_views_failed_updated",
        "generation_views",
        ["updated_at"],
        schema=SCHEMA,
        postgresql_where="status = 'failed'",
    )
    op.create_index(
        "ix_webhook_deliveries_delivered",
        "webhook_deliveries",
        ["delivered_at"],
        schema=SCHEMA,
        postgresql_where="status = 'delivered'",
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_delivered", "webhook_deliveries", schema=SCHEMA)
    op.drop_index("ix_generation_views_failed_updated", "generation_views", schema=SCHEMA)
