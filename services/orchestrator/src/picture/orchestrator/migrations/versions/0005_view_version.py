"""A generation's version: one more with every announced change, so readers of its events keep
the newest view whatever order the events arrive in.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "orchestrator"


def upgrade() -> None:
    op.add_column(
        "generations", sa.Column("version", sa.Integer, nullable=False, server_default="0"), schema=SCHEMA
    )
    # Existing generations: as many changes as their history holds.
    op.execute(
        "UPDATE orchestrator.generations g SET version = "
        "(SELECT count(*) FROM orchestrator.status_history h WHERE h.generation_id = g.id)"
    )


def downgrade() -> None:
    op.drop_column("generations", "version", schema=SCHEMA)
