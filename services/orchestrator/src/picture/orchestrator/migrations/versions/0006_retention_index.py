"""Failed generations by the time they ended: the retention job finds the old ones without
reading the whole table (partial: only failed rows are in it).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "orchestrator"


def upgrade() -> None:
    op.create_index(
        "ix_generations_failed_ended",
        "generations",
        [sa.text("coalesce(completed_at, updated_at)")],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_generations_failed_ended", "generations", schema=SCHEMA)
