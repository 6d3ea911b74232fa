"""The orchestrator's tables, in its own schema ``orchestrator``."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from picture.common.contracts import GenerationStatus
from picture.common.database import schema_metadata
from picture.common.outbox import outbox_table
from picture.orchestrator.state_machine import TERMINAL

metadata = schema_metadata("orchestrator")


def status_list(statuses: Iterable[GenerationStatus]) -> str:
    """``('a', 'b')``: statuses as a constant SQL list, in the order they are declared."""
    chosen = set(statuses)
    return "(" + ", ".join(f"'{s.value}'" for s in GenerationStatus if s in chosen) + ")"


# Conditions written as SQL text, shared by the partial indexes and the queries that should use
# them: a query's condition must match an index's predicate for the planner to take the index.
NOT_TERMINAL_SQL = f"status NOT IN {status_list(TERMINAL)}"
WAITING_SQL = f"status = '{GenerationStatus.QUEUED.value}' AND dispatched_at IS NULL"

generations = Table(
    "generations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),
    Column("model", String(64), nullable=False),
    Column("model_spec", JSONB, nullable=False),
    Column("parameters", JSONB, nullable=False),
    # Every dispatch (first try and each retry) is a new attempt; results of older attempts
    # are recognised and ignored.
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("retry_count", Integer, nullable=False, server_default="0"),
    Column("priority", Integer, nullable=False, server_default="0"),
    # One more with every announced change (the views' version).
    Column("version", Integer, nullable=False, server_default="0"),
    Column("prediction_id", String(128)),
    Column("output_urls", JSONB),
    Column("stored_objects", JSONB),
    Column("image_id", Uuid),
    Column("cost_usd", Float),
    Column("predict_time_seconds", Float),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Scheduling: a queued generation waits until the scheduler grants it a slot
    # (dispatched_at set, PredictCommand sent); not before available_at (retry back-off).
    Column("dispatched_at", DateTime(timezone=True)),
    Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("batch_id", Uuid),
    Column("batch_index", Integer),
    Column("superseded", Boolean, nullable=False, server_default="false"),  # retried in its batch
    Column("request_hash", String(64)),  # dedup cache key (seeded requests only)
    Column("reused_from", Uuid),
    # W3C trace context of the accepting request: the scheduler's predict continues its trace.
    Column("trace_context", JSONB),
    Index("ix_generations_user_created", "user_id", text("created_at DESC")),
    Index(
        "ix_generations_waiting",
        "priority",
        "created_at",
        postgresql_where=text(WAITING_SQL),
    ),
    Index("ix_generations_batch", "batch_id", "batch_index", postgresql_where=text("batch_id IS NOT NULL")),
    Index(
        "ix_generations_dedup",
        "user_id",
        "request_hash",
        postgresql_where=text(f"request_hash IS NOT NULL AND status = '{GenerationStatus.COMPLETED.value}'"),
    ),
    Index(
        "ix_generations_active",
        "status",
        "updated_at",
        postgresql_where=text(NOT_TERMINAL_SQL),
    ),
    # retention: failed generations by the time they ended
    Index(
        "ix_generations_failed_ended",
        text("coalesce(completed_at, updated_at)"),
        postgresql_where=text("status = 'failed'"),
    ),
)

status_history = Table(
    "status_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("generation_id", Uuid, ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_status_history_generation", "generation_id", "id"),
)

generation_errors = Table(
    "generation_errors",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("generation_id", Uuid, ForeignKey("generations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("model", String(64), nullable=False),
    Column("error_type", String(64), nullable=False),
    Column("error_kind", String(16), nullable=False),
    Column("error_message", Text, nullable=False),
    Column("error_details", JSONB, nullable=False, server_default="{}"),
    Column("retry_count", Integer, nullable=False),
    Column("max_retries", Integer, nullable=False),
    Column("retry_after", DateTime(timezone=True)),
    Column("recovery_action", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_generation_errors_created", "created_at"),
)

generation_performance = Table(
    "generation_performance",
    metadata,
    Column("generation_id", Uuid, ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("model", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("steps", Integer),
    Column("status", String(16), nullable=False),
    Column("retry_count", Integer, nullable=False),
    Column("queue_time_ms", Integer),
    Column("processing_time_ms", Integer),
    Column("total_time_ms", Integer),
    Column("error_message", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)

batches = Table(
    "batches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("name", String(200)),
    Column("kind", String(16), nullable=False),
    Column("model", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_batches_user_created", "user_id", text("created_at DESC")),
)
