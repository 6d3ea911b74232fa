"""Configuration of the simulator, read from ``PICTURE_SIMULATOR_*`` environment variables."""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def generate_webhook_secret() -> str:
    """Return a fresh Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class SimulatorSettings(BaseSettings):
    """All knobs of the simulator; every field maps to ``PICTURE_SIMULATOR_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PICTURE_SIMULATOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    public_url: str | None = None
    token: str | None = None
    webhook_secret: str = Field(default_factory=generate_webhook_secret)
    latency_ms: float = Field(default=800.0, ge=0)
    start_delay_ms: float = Field(default=100.0, ge=0)
    jitter: float = Field(default=0.2, ge=0, le=1)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    output_ttl_seconds: float = Field(default=3600.0, gt=0)
    seed: int | None = None
    run_timeout_seconds: float = Field(default=1800.0, gt=0)
    max_files: int = Field(default=2000, ge=1)
    max_predictions: int = Field(default=100_000, ge=1)
    retry_after_seconds: int | None = Field(default=None, ge=0)
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_seconds: float = Field(default=0.5, ge=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    # Predictions and output files are kept here and resumed after a restart (None: memory only).
    data_dir: Path | None = None

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        if not value.startswith("whsec_"):
            raise ValueError("webhook secret must start with 'whsec_'")
        try:
            base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except binascii.Error as exc:
            raise ValueError("webhook secret must be whsec_<base64>") from exc
        return value

    @property
    def base_url(self) -> str:
        """Base URL (no trailing slash) used in returned prediction and file URLs."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
