"""Generations, status history, errors, performance, outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "orchestrator"
ACTIVE = "status NOT IN ('completed', 'failed', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("model_spec", JSONB, nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("prediction_id", sa.String(128)),
        sa.Column("output_urls", JSONB),
        sa.Column("stored_objects", JSONB),
        sa.Column("image_id", sa.Uuid),
        sa.Column("cost_usd", sa.Float),
        sa.Column("predict_time_seconds", sa.Float),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generations_user_created",
        "generations",
        ["user_id", sa.text("created_at DESC")],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_generations_active",
        "generations",
        ["status", "updated_at"],
        postgresql_where=sa.text(ACTIVE),
        schema=SCHEMA,
    )
    op.create_table(
        "status_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "generation_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.generations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_status_history_generation", "status_history", ["generation_id", "id"], schema=SCHEMA)
    op.create_table(
        "generation_errors",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "generation_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.generations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("error_type", sa.String(64), nullable=False),
        sa.Column("error_kind", sa.String(16), nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("error_details", JSONB, nullable=False, server_default="{}"),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("retry_after", sa.DateTime(timezone=True)),
        sa.Column("recovery_action", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_generation_errors_created", "generation_errors", ["created_at"], schema=SCHEMA)
    op.create_table(
        "generation_performance",
        sa.Column(
            "generation_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.generations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("steps", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("queue_time_ms", sa.Integer),
        sa.Column("processing_time_ms", sa.Integer),
        sa.Column("total_time_ms", sa.Integer),
        sa.Column("error_message", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
        sa.Column("trace_context", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["available_at"],
        postgresql_where=sa.text("published_at IS NULL"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("outbox", "generation_performance", "generation_errors", "status_history", "generations"):
        op.drop_table(table, schema=SCHEMA)
