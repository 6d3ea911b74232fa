"""The gateway's tables, in its own schema ``gateway``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from picture.common.database import schema_metadata
from picture.common.outbox import outbox_table

metadata = schema_metadata("gateway")

# Accepted generations are announced from here (the CREATE command to the orchestrator).
outbox = outbox_table(metadata)

# The read model: every generation's newest view (GenerationView as JSON), written when the
# gateway accepts it (version 0, "pending") and from then on by its GENERATION_UPDATED events,
# only ever by a higher version. Reads of generations come from here.
generation_views = Table(
    "generation_views",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("view", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_generation_views_user_created", "user_id", "created_at"),
    Index("ix_generation_views_failed_updated", "updated_at", postgresql_where=text("status = 'failed'")),
)

# Idempotency-Key of POST /v1/generations: same key and body -> same generation.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("generation_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "key"),
)

# Users seen by the gateway (first sight publishes catalog.ensure_profile), with their
# server-side rights and per-user limit overrides (NULL: the tier's default). Never from claims.
users = Table(
    "users",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("email", String(320)),
    Column("is_anonymous", Boolean, nullable=False, server_default="false"),
    Column("is_admin", Boolean, nullable=False, server_default="false"),
    Column("hourly_limit", Integer),
    Column("daily_limit", Integer),
    Column("max_concurrent", Integer),
    Column("rate_limit_per_minute", Integer),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One row per accepted generation: the quota charge and its concurrency lease.
# refunded_at set once (failed/cancelled) -> the charge no longer counts; released_at or an
# expired lease -> no longer active.
charges = Table(
    "charges",
    metadata,
    Column("generation_id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("charged_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_expires_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True)),
    Column("refunded_at", DateTime(timezone=True)),
    Index("ix_charges_user_charged", "user_id", "charged_at"),
)

# The request rate per user, GCRA: the theoretical arrival time (see migration 0005).
request_rates = Table(
    "request_rates",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("tat", DateTime(timezone=True), nullable=False),
    Column("allowed", Boolean, nullable=False),
)

# Fixed one-minute request counters of the previous limiter: no longer written, kept until
# no gateway of that version runs.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("user_id", Uuid, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "window_start"),
)

# Client webhooks (optional webhook_url of POST /v1/generations) and their deliveries.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("generation_id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the newest generation version sent (or being sent): older ones are not sent after it
    Column("sent_version", BigInteger, nullable=False, server_default="-1"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("generation_id", Uuid, nullable=False, index=True),
    Column("event_seq", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_webhook_deliveries_delivered", "delivered_at", postgresql_where=text("status = 'delivered'")),
)
