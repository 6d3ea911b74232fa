"""Replicate webhook ids already received (replay protection of /v1/webhooks/replicate).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicate_webhooks",
        sa.Column("webhook_id", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="gateway",
    )
    op.create_index(
        "ix_replicate_webhooks_received_at", "replicate_webhooks", ["received_at"], schema="gateway"
    )


def downgrade() -> None:
    op.drop_table("replicate_webhooks", schema="gateway")
