"""image_tags carry the image owner: the gallery's tag filter reads one user's tag rows.

Revision ID: 0004
Revises: 0003

The owner of an image never changes, so the copy cannot drift. With (user_id, tag_id, image_id)
the "every one of these tags" filter intersects a few index ranges of one user instead of probing
the key of every image of the user (or reading every image of a tag, ~60k rows at 1M images).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.add_column("image_tags", sa.Column("user_id", sa.Uuid), schema=SCHEMA)
    op.execute(
        "UPDATE catalog.image_tags it SET user_id = i.user_id FROM catalog.images i WHERE i.id = it.image_id"
    )
    op.alter_column("image_tags", "user_id", nullable=False, schema=SCHEMA)
    op.create_index("ix_image_tags_owner", "image_tags", ["user_id", "tag_id", "image_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_image_tags_owner", "image_tags", schema=SCHEMA)
    op.drop_column("image_tags", "user_id", schema=SCHEMA)
