"""Models: what each model's Replicate input takes (steps, guidance and its range, strength, the
largest seed), and corrections of seeded values that disagreed with the models' real inputs
(see docs/adr/0012-replicate-model-inputs.md).

Revision ID: 0008
Revises: 0007

The new columns are filled from the seed file (picture.catalog.seed). A correction changes a row
only while it still holds the value revision 0002 seeded, so an admin's edit survives.
"""

import sqlalchemy as sa
from alembic import op

from picture.catalog.seed import load_seed

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "catalog"
NEW_COLUMNS = (
    sa.Column("supports_steps", sa.Boolean, nullable=False, server_default="true"),
    sa.Column("supports_guidance", sa.Boolean, nullable=False, server_default="true"),
    sa.Column("guidance_min", sa.Float, nullable=False, server_default="0"),
    sa.Column("guidance_max", sa.Float, nullable=False, server_default="50"),
    sa.Column("supports_strength", sa.Boolean, nullable=False, server_default="true"),
    sa.Column("max_seed", sa.BigInteger, nullable=False, server_default=str(2**32 - 1)),
)
FLUX_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
# (model, column, value seeded by 0002): the seed file holds the corrected value.
CORRECTED = (
    # flux-schnell has no guidance input: the default was filled in and then refused.
    ("flux-schnell", "default_guidance_scale", 3.5),
    # sdxl-lightning-4step has no image input: a source image was silently ignored.
    ("sdxl-lightning", "supports_img2img", True),
    # stable-diffusion-3.5-large has no steps input, nor the 3:4 and 4:3 ratios.
    ("stable-diffusion-3.5", "default_steps", 35),
    ("stable-diffusion-3.5", "supported_aspect_ratios", FLUX_RATIOS),
    # recraft-v3-svg has no seed input.
    ("recraft-v3-svg", "supports_seed", True),
)


def upgrade() -> None:
    for new_column in NEW_COLUMNS:
        op.add_column("models", new_column, schema=SCHEMA)
    op.create_check_constraint("guidance_range", "models", "guidance_min <= guidance_max", schema=SCHEMA)
    seed = {m["name"]: m for m in load_seed()}
    names = [c.name for c in NEW_COLUMNS]
    models = sa.table(
        "models",
        sa.column("name"),
        *(sa.column(n) for n in names),
        *(sa.column(c) for _, c, _ in CORRECTED),
        schema=SCHEMA,
    )
    for name, record in seed.items():
        op.execute(models.update().where(models.c.name == name).values({n: record[n] for n in names}))
    for name, corrected, seeded in CORRECTED:
        op.execute(
            models.update()
            .where(models.c.name == name, models.c[corrected].is_not_distinct_from(seeded))
            .values({corrected: seed[name][corrected]})
        )


def downgrade() -> None:
    op.drop_constraint("guidance_range", "models", schema=SCHEMA)
    for new_column in reversed(NEW_COLUMNS):
        op.drop_column("models", new_column.name, schema=SCHEMA)
