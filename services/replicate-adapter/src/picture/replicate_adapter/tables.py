"""The adapter's tables, in its own schema ``adapter``."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from picture.common.database import schema_metadata

metadata = schema_metadata("adapter")

# One row per (generation, attempt): the prediction the adapter created for it.
# status: creating (row written, create not confirmed), create_uncertain (a create may have
# reached Replicate: reconcile before creating again), then Replicate's statuses
# (starting, processing, succeeded, failed, canceled, aborted) or unknown:<status>.
predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("generation_id", Uuid, nullable=False),
    Column("attempt", Integer, nullable=False),
    # Who asked (cost totals per user); None for rows written before revision 0002.
    Column("user_id", Uuid),
    Column("prediction_id", String(64), unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("replicate_id", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("input", JSONB, nullable=False),
    Column("output", JSONB),
    Column("error", Text),
    Column("error_code", String(64)),
    Column("predict_time_seconds", Float),
    Column("cost_usd", Float, nullable=False),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    Column("terminal", Boolean, nullable=False, server_default="false"),
    # While set and in the future, one handler is creating the prediction (others wait).
    Column("lease_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    # How the terminal status was learned: webhook or poll (None: never ran at Replicate).
    Column("completed_via", String(16)),
    # When the first create request of this attempt was sent, and when the last one ended
    # (answered or failed; None while one is in flight): Replicate created any prediction of
    # this attempt in between (reconcile, revision 0004).
    Column("create_sent_at", DateTime(timezone=True)),
    Column("create_settled_at", DateTime(timezone=True)),
    # W3C trace context of the predict command: the terminal event continues its trace, from
    # any replica (a webhook) and after a restart (observability).
    Column("trace_context", JSONB),
    # The replica that polls this prediction and until when its lease holds (renewed by its
    # heartbeat; an expired lease is taken over by another replica). Revision 0005.
    Column("owner", String(128)),
    Column("owned_until", DateTime(timezone=True)),
    UniqueConstraint("generation_id", "attempt", name="uq_predictions_generation_attempt"),
)
