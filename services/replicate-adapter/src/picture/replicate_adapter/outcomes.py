"""What a prediction's final state means for the orchestrator: one mapping, used when the
poller sees a terminal status and when a redelivered command finds a finished row.

Replicate's statuses (succeeded, failed, canceled, aborted, anything unrecognised) and the
adapter's own terminal states (rejected, create_failed, expired, canceled before creation)
become a :class:`~picture.common.contracts.PredictionEvent`.
"""

from __future__ import annotations

import uuid
from typing import Any

from picture.common.contracts import ErrorInfo, ErrorKind, PredictionEvent, PredictionStatus
from picture.common.ids import derived_id
from picture.replicate_adapter.replicate import normalize_output

# The adapter's own terminal statuses (no prediction, or none that Replicate finished).
REJECTED = "rejected"  # Replicate refused the create request (permanent)
CREATE_FAILED = "create_failed"  # Replicate stayed unreachable for every delivery (transient)
EXPIRED = "expired"  # the command's deadline passed before the prediction was created
LOST = "lost"  # Replicate answers 404 for a prediction it created (retention, wrong account)

NO_ERROR_TEXT = "The model failed without an error message"


def started_id(generation_id: uuid.UUID, attempt: int) -> uuid.UUID:
    return derived_id("prediction.started", generation_id, attempt)


def terminal_id(generation_id: uuid.UUID, attempt: int) -> uuid.UUID:
    return derived_id("prediction.terminal", generation_id, attempt)


def _failed(kind: ErrorKind, code: str, message: str, **details: Any) -> ErrorInfo:
    return ErrorInfo(kind=kind, code=code, message=message, details=details)


def terminal_event(
    *,
    generation_id: uuid.UUID,
    attempt: int,
    prediction_id: str | None,
    status: str,
    output: Any = None,
    error: str | None = None,
    predict_time_seconds: float | None = None,
    cost_usd: float | None = None,
) -> PredictionEvent:
    """The terminal event for a finished prediction (``status`` as stored on the row)."""
    base: dict[str, Any] = {
        "generation_id": generation_id,
        "attempt": attempt,
        "prediction_id": prediction_id,
        "predict_time_seconds": predict_time_seconds,
    }
    if status == "succeeded":
        urls = normalize_output(output)
        if urls:
            return PredictionEvent(
                **base, status=PredictionStatus.SUCCEEDED, output_urls=urls, cost_usd=cost_usd
            )
        info = _failed(ErrorKind.PERMANENT, "empty_output", "The model succeeded but returned no image")
    elif status == "canceled":
        return PredictionEvent(**base, status=PredictionStatus.CANCELED)
    elif status == "failed":
        info = _failed(ErrorKind.PERMANENT, "prediction_failed", error or NO_ERROR_TEXT)
    elif status == "aborted":
        info = _failed(
            ErrorKind.TRANSIENT,
            "prediction_aborted",
            error or "The prediction's deadline passed before it started",
        )
    elif status == EXPIRED:
        info = _failed(
            ErrorKind.TRANSIENT,
            "prediction_aborted",
            "The deadline passed before the prediction was created",
        )
    elif status == LOST:
        info = _failed(
            ErrorKind.TRANSIENT, "prediction_lost", error or "Replicate no longer knows the prediction"
        )
    elif status == REJECTED:
        info = _failed(ErrorKind.PERMANENT, "replicate_rejected", error or "Replicate refused")
    elif status == CREATE_FAILED:
        info = _failed(ErrorKind.TRANSIENT, "replicate_unavailable", error or "Replicate is unavailable")
    else:
        info = _failed(
            ErrorKind.PERMANENT,
            "unknown_status",
            f"Replicate reported an unknown status: {status}",
            status=status,
        )
    return PredictionEvent(**base, status=PredictionStatus.FAILED, error=info)


def error_code(event: PredictionEvent) -> str | None:
    return event.error.code if event.error else None
