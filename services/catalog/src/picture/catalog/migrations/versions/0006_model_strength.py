"""Models: image-to-image strength fields of the old product (default, min, max).

Revision ID: 0006
Revises: 0005

No default strength is seeded: without one the adapter sends none and the model uses its own.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.add_column("models", sa.Column("default_strength", sa.Float), schema=SCHEMA)
    op.add_column(
        "models", sa.Column("strength_min", sa.Float, nullable=False, server_default="0"), schema=SCHEMA
    )
    op.add_column(
        "models", sa.Column("strength_max", sa.Float, nullable=False, server_default="1"), schema=SCHEMA
    )
    op.create_check_constraint(
        "strength_range",
        "models",
        "strength_min >= 0 AND strength_max <= 1 AND strength_min <= strength_max"
        " AND (default_strength IS NULL OR default_strength BETWEEN strength_min AND strength_max)",
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_constraint("strength_range", "models", schema=SCHEMA)
    for column in ("strength_max", "strength_min", "default_strength"):
        op.drop_column("models", column, schema=SCHEMA)
