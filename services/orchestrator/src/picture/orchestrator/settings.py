"""Orchestrator settings."""

from __future__ import annotations

from pydantic import Field

from picture.common.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    http_port: int = 8081
    # Transient failures are retried this many times, waiting these delays (the last repeats).
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_delays_seconds: tuple[float, ...] = (5.0, 10.0, 30.0)
    # Outbox relay: how many rows per round, and the idle poll interval.
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_idle_seconds: float = Field(default=0.5, gt=0)
