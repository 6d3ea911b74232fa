"""Seed the model catalog from picture/catalog/seed_models.json (see picture.catalog.seed).

Revision ID: 0002
Revises: 0001

Upserts by name, so re-running (or a later revision with new values) keeps one row per model;
is_active is left alone on existing rows so an admin's choice survives.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from picture.catalog.seed import load_seed

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The columns revision 0001 created; later columns are seeded by the revisions that add them.
COLUMNS = (
    "name",
    "display_name",
    "replicate_id",
    "version",
    "description",
    "default_width",
    "default_height",
    "min_width",
    "max_width",
    "min_height",
    "max_height",
    "default_steps",
    "max_steps",
    "default_guidance_scale",
    "supports_negative_prompt",
    "supports_seed",
    "supports_img2img",
    "supported_aspect_ratios",
    "cost_per_generation",
    "estimated_time_seconds",
    "is_default",
    "sort_order",
)


def upgrade() -> None:
    models = sa.table("models", *(sa.column(key) for key in COLUMNS), schema="catalog")
    rows = [{key: m[key] for key in COLUMNS} for m in load_seed()]
    stmt = postgresql.insert(models).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={key: stmt.excluded[key] for key in rows[0] if key != "name"},
    )
    op.execute(stmt)


def downgrade() -> None:
    models = sa.table("models", sa.column("name"), schema="catalog")
    op.execute(models.delete().where(models.c.name.in_([m["name"] for m in load_seed()])))
