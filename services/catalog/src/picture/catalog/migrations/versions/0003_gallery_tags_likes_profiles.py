"""Gallery, explore, tags, likes, profiles, prompt templates, outbox.

Revision ID: 0003
Revises: 0002

images gain like_count (kept in the same transaction as image_likes), popularity (likes +
downloads) and a full-text vector of the prompt, both generated columns; the hot queries get
their indexes (explore recent/popular and search are partial on public, non-archived rows).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "catalog"
EXPLORE = sa.text("is_public AND archived_at IS NULL")


def upgrade() -> None:
    op.add_column(
        "images", sa.Column("like_count", sa.Integer, nullable=False, server_default="0"), schema=SCHEMA
    )
    op.add_column(
        "images",
        sa.Column("popularity", sa.Integer, sa.Computed("like_count + download_count", persisted=True)),
        schema=SCHEMA,
    )
    op.add_column(
        "images",
        sa.Column(
            "search",
            postgresql.TSVECTOR,
            sa.Computed("to_tsvector('english'::regconfig, prompt)", persisted=True),
        ),
        schema=SCHEMA,
    )
    op.create_check_constraint("like_count_non_negative", "images", "like_count >= 0", schema=SCHEMA)
    op.create_index(
        "ix_images_explore_recent",
        "images",
        [sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=EXPLORE,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_images_explore_popular",
        "images",
        [sa.text("popularity DESC"), sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=EXPLORE,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_images_explore_search",
        "images",
        ["search"],
        postgresql_using="gin",
        postgresql_where=EXPLORE,
        schema=SCHEMA,
    )

    op.create_table(
        "profiles",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("username", sa.String(32)),
        sa.Column("avatar_url", sa.String(1000)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index(
        "ux_profiles_username", "profiles", [sa.text("lower(username)")], unique=True, schema=SCHEMA
    )

    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
        sa.Column("color", sa.String(7), nullable=False, server_default="#6b7280"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("name = lower(name)", name="tag_name_lowercase"),
        schema=SCHEMA,
    )
    op.create_table(
        "image_tags",
        sa.Column(
            "image_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.images.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "tag_id", sa.BigInteger, sa.ForeignKey(f"{SCHEMA}.tags.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_image_tags_tag", "image_tags", ["tag_id", "image_id"], schema=SCHEMA)
    op.create_table(
        "image_likes",
        sa.Column(
            "image_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.images.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("user_id", sa.Uuid, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_image_likes_user", "image_likes", ["user_id"], schema=SCHEMA)

    op.create_table(
        "prompt_templates",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("negative_prompt", sa.Text),
        sa.Column("category", sa.String(50)),
        sa.Column("is_public", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("use_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_prompt_templates_user",
        "prompt_templates",
        ["user_id", sa.text("created_at DESC"), sa.text("id DESC")],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_prompt_templates_public",
        "prompt_templates",
        [sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=sa.text("is_public"),
        schema=SCHEMA,
    )
    op.create_table(
        "template_uses",
        sa.Column(
            "template_id",
            sa.Uuid,
            sa.ForeignKey(f"{SCHEMA}.prompt_templates.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("generation_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("envelope", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "outbox",
        "template_uses",
        "prompt_templates",
        "image_likes",
        "image_tags",
        "tags",
        "profiles",
    ):
        op.drop_table(table, schema=SCHEMA)
    for index in ("ix_images_explore_search", "ix_images_explore_popular", "ix_images_explore_recent"):
        op.drop_index(index, "images", schema=SCHEMA)
    op.drop_constraint("like_count_non_negative", "images", schema=SCHEMA)
    for column in ("search", "popularity", "like_count"):
        op.drop_column("images", column, schema=SCHEMA)
