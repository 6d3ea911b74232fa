"""The newest generation version a client's webhook was sent: an older state is never sent
after a newer one (events of one generation may arrive out of order across replicas).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions",
        sa.Column("sent_version", sa.BigInteger(), nullable=False, server_default="-1"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("webhook_subscriptions", "sent_version", schema=SCHEMA)
