"""The messages the orchestrator sends, built from a generation's row (or its view)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from picture.common import contracts as c
from picture.orchestrator.outbox import OutboxMessage, outbox_message


def update_message(view: c.GenerationView, trace_context: dict[str, str] | None = None) -> OutboxMessage:
    """The GENERATION_UPDATED outbox message of ``view``; in the given trace context when it is
    written on behalf of another request (group commit), else the current one."""
    return outbox_message(
        c.GENERATION_UPDATED,
        c.GenerationUpdatedEvent(generation=view),
        trace_context=trace_context,
        user_id=view.user_id,
        generation_id=view.id,
    )


def predict_message(row: Any, total_timeout_seconds: float) -> OutboxMessage:
    """The PREDICT outbox message of the row's attempt, due by the total timeout. It keeps the
    accepting request's trace: the scheduler and the sweeper send it outside that request."""
    command = c.PredictCommand(
        generation_id=row.id,
        user_id=row.user_id,
        attempt=row.attempt,
        model=c.ModelSpec.model_validate(row.model_spec),
        parameters=c.GenerationParameters.model_validate(row.parameters),
        deadline=row.created_at + timedelta(seconds=total_timeout_seconds),
    )
    return outbox_message(c.PREDICT, command, trace_context=row.trace_context or {})


def ingest_command(row: Any) -> c.IngestCommand:
    """Fetch the prediction's output into storage, for the row's attempt. The model, prompt and
    seed go along as provenance written into the stored image."""
    return c.IngestCommand(
        generation_id=row.id,
        user_id=row.user_id,
        attempt=row.attempt,
        source_urls=tuple(row.output_urls or ()),
        model=row.model,
        prompt=(row.parameters or {}).get("prompt"),
        seed=(row.parameters or {}).get("seed"),
    )


def record_image_command(
    row: Any, image_id: uuid.UUID, objects: Iterable[c.StoredObject]
) -> c.RecordImageCommand:
    params = c.GenerationParameters.model_validate(row.parameters)
    return c.RecordImageCommand(
        image_id=image_id,
        generation_id=row.id,
        user_id=row.user_id,
        model=row.model,
        prompt=params.prompt,
        negative_prompt=params.negative_prompt,
        seed=params.seed,
        objects=tuple(objects),
    )


def cancel_prediction_command(row: Any) -> c.CancelPredictionCommand:
    return c.CancelPredictionCommand(generation_id=row.id, attempt=row.attempt)
