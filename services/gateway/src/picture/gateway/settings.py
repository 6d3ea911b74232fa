"""Gateway settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from picture.common.settings import ServiceSettings


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
    cors_origins: tuple[str, ...] = ()
    max_prompt_length: int = Field(default=2000, ge=1)
    model_cache_seconds: float = 30.0

    # ---- uploads (issue #6): streamed to the media service's internal endpoint
    media_internal_url: str = "http://127.0.0.1:8083"
    # Shared with media (its PICTURE_MEDIA_INTERNAL_TOKEN); required in production.
    media_internal_token: SecretStr | None = None
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
