"""Settings: one pydantic-settings class per service, all on this base.

Values come from the environment (prefix ``PICTURE_``). Outside development, secrets have no
defaults and placeholders are refused, so a misconfigured deployment fails at start.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A list setting written as "a,b,c" in the environment (not JSON), as operators expect.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    """What every service needs: where NATS and PostgreSQL are, its HTTP port, logging."""

    model_config = SettingsConfigDict(env_prefix="PICTURE_", extra="ignore", frozen=True)

    environment: Environment = Environment.DEVELOPMENT
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/picture"
    # Connections this process keeps open; callers beyond it wait (no overflow: see database.py).
    database_pool_size: int = Field(default=10, ge=1, le=200)
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # A request's headers must arrive within this of its first byte, a declared body within
    # the second of the headers' end; else 408 and the connection is closed (slow clients).
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_body_timeout_seconds: float = Field(default=60.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = True
    # OTLP endpoint for traces (e.g. http://otel-collector:4318); empty: tracing not exported.
    otlp_endpoint: str = ""
    # File that receives every span as one JSON object per line (tests, debugging); empty: off.
    trace_file: str = ""
    # Replicas of the JetStream streams this service creates (1 in development, 3 in production).
    stream_replicas: int = 1
    # Graceful stop (SIGTERM; the pod's terminationGracePeriodSeconds is 30): readiness fails at
    # once, the HTTP server goes on for shutdown_delay_seconds (load balancers take the replica
    # out; 0 in development, 5 in deploy/), then lets its requests finish (10 s at most); the
    # message handlers in flight get until shutdown_grace_seconds after the signal, then the
    # unfinished ones are handed back (nak) to another replica. Delay + 10 and the grace stay
    # well below 30 s, leaving time to close the rest.
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=15)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=25)
    # Seconds a NATS request/reply query may take before the caller gives up.
    query_timeout_seconds: float = 5.0
    # Media spends at most this on the downloads of one ingest (every attempt and the pauses
    # between them), then reports a transient failure; the orchestrator's sweeper resumes a
    # generation stuck downloading only after it (plus a margin), so one download never runs
    # twice at once. Set it alike for both.
    ingest_download_budget_seconds: float = Field(default=90.0, gt=0)
    # Failed generations are deleted this many days after they failed (the old product's
    # plan): by the orchestrator from its tables and by the gateway from its read model, so
    # one setting for both (PICTURE_FAILED_GENERATION_RETENTION_DAYS). 0: kept for ever.
    failed_generation_retention_days: float = Field(default=30.0, ge=0)
    # How often a service runs its retention jobs; each round deletes in batches of this size.
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000)

    def require_secret(self, name: str, value: SecretStr | None) -> None:
        """Refuse a missing or placeholder secret outside development and tests."""
        if self.environment is Environment.PRODUCTION and (
            value is None or value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError(f"PICTURE_{name.upper()} must be set to a real secret in production")

    @model_validator(mode="after")
    def _check_secrets(self) -> Self:
        for name, field in type(self).model_fields.items():
            if field.annotation in (SecretStr, SecretStr | None):
                self.require_secret(name, getattr(self, name))
        return self
