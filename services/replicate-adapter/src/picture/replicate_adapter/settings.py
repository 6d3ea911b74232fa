"""Replicate adapter settings (environment, prefix ``PICTURE_``).

The API token is also read from the plain ``REPLICATE_API_TOKEN`` that Replicate's own tools
use. It is required (and may not be a placeholder) outside development.
"""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from picture.common import contracts as c
from picture.common.settings import PLACEHOLDER_SECRETS, Environment, ServiceSettings


class AdapterSettings(ServiceSettings):
    model_config = SettingsConfigDict(populate_by_name=True)

    http_port: int = 8082
    # Host root; request paths are /v1/...
    replicate_base_url: str = "https://api.replicate.com"
    replicate_api_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "replicate_api_token", "PICTURE_REPLICATE_API_TOKEN", "REPLICATE_API_TOKEN"
        ),
    )
    # The gateway verifies Replicate's webhooks; the adapter only accepts the setting.
    replicate_webhook_secret: SecretStr | None = None
    # First poll interval of a prediction; grows by ``poll_backoff`` up to ``poll_max``.
    replicate_poll_interval_seconds: float = Field(default=0.5, gt=0)
    replicate_poll_max_interval_seconds: float = Field(default=5.0, gt=0)
    replicate_poll_backoff: float = Field(default=1.5, ge=1)
    # Polls started per second at most by this process (fallback polling of thousands of
    # predictions spreads out instead of starving new work).
    replicate_poll_max_per_second: float = Field(default=100.0, gt=0)
    # Poll ownership between replicas: a replica holds a lease of this length on each
    # prediction it polls and renews them every heartbeat; a dead replica's predictions are
    # taken over once their lease ends (within lease + one heartbeat), at most
    # takeover_batch per heartbeat.
    replicate_poll_lease_seconds: float = Field(default=15.0, gt=0)
    replicate_poll_heartbeat_seconds: float = Field(default=5.0, gt=0)
    replicate_poll_takeover_batch: int = Field(default=200, ge=1)
    # HTTP timeout of one Replicate call.
    replicate_timeout_seconds: float = Field(default=30.0, gt=0)
    # Bulkhead: Replicate calls in flight at once from this process.
    replicate_max_concurrency: int = Field(default=32, ge=1)
    # Deliveries of a predict command before it is reported as failed (transient).
    predict_max_deliveries: int = Field(default=c.ADAPTER_COMMANDS.max_deliver, ge=1)
    # Longest wait honoured from a 429's Retry-After (or "resets in ~Ns") before trying again.
    replicate_max_retry_after_seconds: float = Field(default=30.0, gt=0)
    # Circuit breaker: opens when, over the last window, at least min_calls calls were made and
    # the failure rate (5xx, timeouts, connection errors) reached failure_rate; stays open
    # open_seconds, then lets half_open_probes probes through (that many successes close it).
    replicate_breaker_window_seconds: float = Field(default=30.0, gt=0)
    replicate_breaker_min_calls: int = Field(default=10, ge=1)
    replicate_breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    replicate_breaker_open_seconds: float = Field(default=15.0, gt=0)
    replicate_breaker_half_open_probes: int = Field(default=2, ge=1)
    # Where Replicate sends webhooks (the gateway's /v1/webhooks/replicate). Set: predictions
    # are created with it and polling is only the fallback, at the slower cadence below.
    replicate_webhook_url: str | None = None
    replicate_webhook_poll_interval_seconds: float = Field(default=15.0, gt=0)
    replicate_webhook_poll_max_interval_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check_poll_lease(self) -> Self:
        # Renewals must land well inside the lease (its last fifth is not polled), or a live
        # replica would lose what it polls.
        if self.replicate_poll_heartbeat_seconds > self.replicate_poll_lease_seconds / 2:
            raise ValueError("PICTURE_REPLICATE_POLL_HEARTBEAT_SECONDS must be at most half the lease")
        return self

    @model_validator(mode="after")
    def _check_secrets(self) -> Self:
        # Replaces the base check on purpose: the webhook secret is optional until webhooks
        # are wired; the API token is required everywhere but development.
        token = self.replicate_api_token
        if self.environment is not Environment.DEVELOPMENT and (
            token is None or token.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError(
                "PICTURE_REPLICATE_API_TOKEN (or REPLICATE_API_TOKEN) must be set to a real "
                f"token in {self.environment.value}"
            )
        return self
