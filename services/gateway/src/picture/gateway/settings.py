"""Gateway settings."""

from __future__ import annotations

import uuid

from pydantic import Field, SecretStr

from picture.common.settings import CommaList, ServiceSettings


class GatewaySettings(ServiceSettings):
    http_port: int = 8080
    # Public base URL of this gateway: image URLs in responses are built on it.
    public_url: str = "http://127.0.0.1:8080"
    # Supabase legacy JWT secret (HS256). Required outside development.
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "http://127.0.0.1:54321/auth/v1"
    jwt_audience: str = "authenticated"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    max_token_bytes: int = 8192
    replicate_webhook_secret: SecretStr | None = None
    cors_origins: CommaList = ()
    max_prompt_length: int = Field(default=2000, ge=1)
    # JSON request bodies larger than this are refused (413) unread; uploads have their own cap.
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    model_cache_seconds: float = 30.0

    # ---- uploads: streamed to the media service's internal endpoint
    media_internal_url: str = "http://127.0.0.1:8083"
    # Shared with media (its PICTURE_MEDIA_INTERNAL_TOKEN); required in production.
    media_internal_token: SecretStr | None = None
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)

    # ---- authentication: asymmetric Supabase keys (ES256 / RS256) from a JWKS URL
    # e.g. https://<ref>.supabase.co/auth/v1/.well-known/jwks.json; empty: HS256 only.
    jwks_url: str = ""
    jwks_cache_seconds: float = Field(default=600.0, gt=0)
    # The JWKS is fetched at most this often; a token with an unknown kid waits for the next
    # fetch (random kids cannot hammer the endpoint, nor starve a key rotated in just now).
    jwks_min_refresh_seconds: float = Field(default=1.0, ge=0)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0)
    # Comma-separated user ids with admin rights (plus gateway.users.is_admin).
    admin_user_ids: str = ""

    # ---- limits (shared by every replica through PostgreSQL); per-user overrides in gateway.users
    hourly_limit: int = Field(default=20, ge=0)
    daily_limit: int = Field(default=100, ge=0)
    max_concurrent: int = Field(default=3, ge=1)
    anonymous_hourly_limit: int = Field(default=5, ge=0)
    anonymous_daily_limit: int = Field(default=10, ge=0)
    anonymous_max_concurrent: int = Field(default=1, ge=1)
    max_batch_size: int = Field(default=10, ge=1, le=10)
    # A concurrency lease not released by a terminal event expires after this long.
    lease_seconds: float = Field(default=900.0, gt=0)
    # Requests per minute per user, every authenticated endpoint.
    rate_limit_per_minute: int = Field(default=600, ge=1)
    anonymous_rate_limit_per_minute: int = Field(default=120, ge=1)

    # ---- live updates
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # How long a verified access token is taken on trust again (at most until it expires).
    verified_token_cache_seconds: float = Field(default=60.0, ge=0)
    # The longest a request may be held by ``Prefer: wait=N`` (as Replicate's sync mode).
    max_prefer_wait_seconds: float = Field(default=60.0, ge=0)
    max_streams_per_user: int = Field(default=50, ge=1)

    # ---- outgoing client webhooks (webhook_url of POST /v1/generations), Standard Webhooks.
    # Empty: the feature is off (a webhook_url is refused). "whsec_<base64>" or raw text.
    webhook_signing_secret: str = Field(default="", repr=False)
    # Only for development and tests: allow http and private/loopback targets.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30)
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    # Delivered webhook deliveries are deleted after this many days (0: kept); failed
    # generations' read-model rows after the shared failed_generation_retention_days.
    webhook_delivery_retention_days: float = Field(default=7.0, ge=0)

    @property
    def admin_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(uuid.UUID(part.strip()) for part in self.admin_user_ids.split(",") if part.strip())
