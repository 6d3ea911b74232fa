"""Scheduling (dispatch slots, back-off), batches, dedup cache key.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "orchestrator"


def upgrade() -> None:
    for column in (
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("batch_id", sa.Uuid),
        sa.Column("batch_index", sa.Integer),
        sa.Column("superseded", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("reused_from", sa.Uuid),
    ):
        op.add_column("generations", column, schema=SCHEMA)
    # Generations accepted before scheduling existed were dispatched at once.
    op.execute(
        "UPDATE orchestrator.generations SET dispatched_at = created_at "
        "WHERE status NOT IN ('completed', 'failed', 'cancelled')"
    )
    op.create_index(
        "ix_generations_waiting",
        "generations",
        ["priority", "created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'queued' AND dispatched_at IS NULL"),
    )
    op.create_index(
        "ix_generations_batch",
        "generations",
        ["batch_id", "batch_index"],
        schema=SCHEMA,
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )
    op.create_index(
        "ix_generations_dedup",
        "generations",
        ["user_id", "request_hash"],
        schema=SCHEMA,
        postgresql_where=sa.text("request_hash IS NOT NULL AND status = 'completed'"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_batches_user_created", "batches", ["user_id", sa.text("created_at DESC")], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("batches", schema=SCHEMA)
    for index in ("ix_generations_dedup", "ix_generations_batch", "ix_generations_waiting"):
        op.drop_index(index, table_name="generations", schema=SCHEMA)
    for name in (
        "reused_from",
        "request_hash",
        "superseded",
        "batch_index",
        "batch_id",
        "available_at",
        "dispatched_at",
    ):
        op.drop_column("generations", name, schema=SCHEMA)
