"""The replicate adapter's contracts: the prediction and webhook commands it consumes, the
prediction event it publishes, and the cost query it answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from picture.common.contracts.messages import Message
from picture.common.contracts.subjects import Channel, Query
from picture.common.contracts.values import ErrorInfo, GenerationParameters, ModelSpec

__all__ = [
    "CANCEL_PREDICTION",
    "COST_TOTALS",
    "PREDICT",
    "PREDICTION_UPDATED",
    "REPLICATE_WEBHOOK",
    "CancelPredictionCommand",
    "CostTotalsReply",
    "CostTotalsRequest",
    "CostTotalsRow",
    "PredictCommand",
    "PredictionEvent",
    "PredictionStatus",
    "ReplicateWebhookCommand",
]

# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


class PredictCommand(Message):
    TYPE: ClassVar[str] = "adapter.predict"

    generation_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    model: ModelSpec
    parameters: GenerationParameters
    deadline: datetime | None = None


class CancelPredictionCommand(Message):
    TYPE: ClassVar[str] = "adapter.cancel"

    generation_id: uuid.UUID
    attempt: int


PREDICT = Channel("picture.cmd.adapter.predict", PredictCommand)
CANCEL_PREDICTION = Channel("picture.cmd.adapter.cancel", CancelPredictionCommand)


class PredictionStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class PredictionEvent(Message):
    """The adapter's report on a prediction: started, or a terminal outcome."""

    TYPE: ClassVar[str] = "prediction.updated"

    generation_id: uuid.UUID
    attempt: int
    prediction_id: str | None
    status: PredictionStatus
    output_urls: tuple[str, ...] = ()
    error: ErrorInfo | None = None
    predict_time_seconds: float | None = None
    cost_usd: float | None = None


PREDICTION_UPDATED = Channel("picture.evt.prediction.{generation_id}", PredictionEvent)

# --------------------------------------------------------------------------------------------
# Replicate webhooks, verified by the gateway
# --------------------------------------------------------------------------------------------


class ReplicateWebhookCommand(Message):
    """A Replicate webhook the gateway verified (signature, timestamp, replay), handed to the
    adapter: ``prediction`` is the webhook's JSON body (a prediction object) as received."""

    TYPE: ClassVar[str] = "adapter.webhook"

    webhook_id: str
    prediction: dict[str, Any]
    received_at: datetime
    # The attempt named in the webhook URL's query (the adapter puts it there when creating):
    # Replicate calls back that exact URL, so this says whose prediction it is.
    generation_id: uuid.UUID | None = None
    attempt: int | None = None


REPLICATE_WEBHOOK = Channel("picture.cmd.adapter.webhook", ReplicateWebhookCommand)

# --------------------------------------------------------------------------------------------
# Cost totals
# --------------------------------------------------------------------------------------------


class CostTotalsRequest(Message):
    """Cost of predictions per UTC day and model (and user, when ``user_id`` is given) over
    the last ``days`` days, today included."""

    TYPE: ClassVar[str] = "adapter.cost_totals"

    days: int = Field(default=7, ge=1, le=366)
    user_id: uuid.UUID | None = None


class CostTotalsRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    day: str  # YYYY-MM-DD (UTC)
    model: str
    user_id: uuid.UUID | None = None
    predictions: int
    cost_usd: float


class CostTotalsReply(Message):
    TYPE: ClassVar[str] = "adapter.cost_totals_reply"

    rows: tuple[CostTotalsRow, ...]
    total_usd: float


COST_TOTALS = Query("picture.q.adapter.cost_totals", CostTotalsRequest, CostTotalsReply)
