"""Users, quota charges and leases, rate counters, client webhooks.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("is_anonymous", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("hourly_limit", sa.Integer),
        sa.Column("daily_limit", sa.Integer),
        sa.Column("max_concurrent", sa.Integer),
        sa.Column("rate_limit_per_minute", sa.Integer),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="gateway",
    )
    op.create_table(
        "charges",
        sa.Column("generation_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("refunded_at", sa.DateTime(timezone=True)),
        schema="gateway",
    )
    op.create_index("ix_charges_user_charged", "charges", ["user_id", "charged_at"], schema="gateway")
    op.create_table(
        "rate_counters",
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "window_start"),
        schema="gateway",
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("generation_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="gateway",
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("generation_id", sa.Uuid, nullable=False),
        sa.Column("event_seq", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="gateway",
    )
    op.create_index(
        "ix_webhook_deliveries_generation_id", "webhook_deliveries", ["generation_id"], schema="gateway"
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries", schema="gateway")
    op.drop_table("webhook_subscriptions", schema="gateway")
    op.drop_table("rate_counters", schema="gateway")
    op.drop_table("charges", schema="gateway")
    op.drop_table("users", schema="gateway")
