"""Pydantic schemas of request bodies (API and control API)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WebhookEvent = Literal["start", "output", "logs", "completed"]
ALL_WEBHOOK_EVENTS: frozenset[str] = frozenset({"start", "output", "logs", "completed"})


class ModelPredictionRequest(BaseModel):
    """Body of ``POST /v1/models/{owner}/{name}/predictions`` and the deployments endpoint.
    Unknown top-level properties are refused, as Replicate refuses them (unknown *input*
    fields are not: the model's schema decides, see :mod:`.schemas`)."""

    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any]
    webhook: str | None = None
    webhook_completed: str | None = None
    webhook_events_filter: list[WebhookEvent] | None = None
    stream: bool | None = None


class VersionPredictionRequest(ModelPredictionRequest):
    """Body of ``POST /v1/predictions``: a version plus the common fields."""

    version: str = Field(min_length=1)


class ControlConfig(BaseModel):
    """Runtime behaviour that tests can change through ``/_control/config``."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(ge=0)
    start_delay_ms: float = Field(ge=0)
    jitter: float = Field(ge=0, le=1)
    failure_rate: float = Field(ge=0, le=1)
    paused: bool = False
    force_status: int | None = Field(default=None, ge=400, le=599)
    force_count: int = Field(default=0, ge=0)
    force_timeout_ms: float = Field(default=0.0, ge=0)
    drop_webhooks: bool = False


class ControlConfigUpdate(BaseModel):
    """Partial update of :class:`ControlConfig` (``PUT /_control/config``)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float | None = Field(default=None, ge=0)
    start_delay_ms: float | None = Field(default=None, ge=0)
    jitter: float | None = Field(default=None, ge=0, le=1)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    paused: bool | None = None
    force_status: int | None = Field(default=None, ge=400, le=599)
    force_count: int | None = Field(default=None, ge=0)
    force_timeout_ms: float | None = Field(default=None, ge=0)
    drop_webhooks: bool | None = None
