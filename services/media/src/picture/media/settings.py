"""Media settings: storage backend, download policy, image processing limits."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from picture.common.contracts import MAX_REFERENCED_KEYS
from picture.common.settings import CommaList, Environment, ServiceSettings

DEVELOPMENT_INTERNAL_TOKEN = "picture-development-internal-token"  # noqa: S105 - development only


class StorageBackend(StrEnum):
    FILESYSTEM = "filesystem"
    S3 = "s3"


class MediaSettings(ServiceSettings):
    http_port: int = 8083

    storage_backend: StorageBackend = StorageBackend.FILESYSTEM
    storage_dir: Path = Path("var/objects")
    # Signs the internal object URLs of the filesystem backend (required outside development).
    media_signing_key: SecretStr | None = None
    # Base URL of this service's HTTP port, as the gateway reaches it.
    media_public_url: str = "http://127.0.0.1:8083"

    # Exact host names downloads may come from ("a,b": a comma list, not JSON).
    download_allowed_hosts: CommaList = ()
    # Development and tests only: allow http:// and loopback addresses (the simulator).
    download_allow_insecure_loopback: bool = False
    # Development only: allow http:// and private (RFC 1918, ULA) addresses, for docker compose
    # where the simulator has a container-network address. Link-local stays refused.
    download_allow_insecure_private: bool = False
    download_max_bytes: int = 50 * 1024 * 1024
    download_timeout_seconds: float = 60.0

    webp_quality: int = 88
    # libwebp effort 0 (fastest) .. 6 (smallest); only pictures we encode (PNG, JPEG, resized).
    webp_method: int = Field(default=2, ge=0, le=6)
    max_pixels: int = 40_000_000
    thumbnail_long_side: int = 256
    # Write the generation's model, prompt and seed (XMP) into stored originals.
    embed_provenance: bool = True
    # Long side of the WebP preview rendered from an SVG original.
    svg_preview_long_side: int = 1024

    # Uploads (POST /internal/uploads, called by the gateway only).
    max_upload_bytes: int = 10 * 1024 * 1024
    # Shared with the gateway: authenticates its calls to /internal/* (required in production).
    media_internal_token: SecretStr | None = None

    # Sweep of stored objects no image points at (picture.media.sweep). Off unless enabled:
    # it deletes files, so an operator turns it on (first with the dry run, which only logs
    # and counts). Objects younger than the grace period are never touched (in-flight
    # generations and uploads: the catalog records them within seconds).
    storage_sweep_enabled: bool = False
    storage_sweep_dry_run: bool = False
    storage_sweep_interval_seconds: float = Field(default=86400.0, gt=0)
    storage_sweep_grace_seconds: float = Field(default=86400.0, ge=600)
    storage_sweep_batch_size: int = Field(default=500, ge=1, le=MAX_REFERENCED_KEYS)

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "picture"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    @field_validator("download_allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(host.lower() for host in value)

    @field_validator("media_public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("webp_quality")
    @classmethod
    def _quality(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise ValueError("PICTURE_WEBP_QUALITY must be between 1 and 100")
        return value

    @model_validator(mode="after")
    def _check_media(self) -> Self:
        insecure = self.download_allow_insecure_loopback or self.download_allow_insecure_private
        if insecure and self.environment is Environment.PRODUCTION:
            raise ValueError("PICTURE_DOWNLOAD_ALLOW_INSECURE_LOOPBACK is refused in production")
        # The filesystem backend signs URLs: a real key is needed outside development.
        if (
            self.storage_backend is StorageBackend.FILESYSTEM
            and self.media_signing_key is None
            and self.environment is not Environment.DEVELOPMENT
        ):
            raise ValueError("PICTURE_MEDIA_SIGNING_KEY must be set outside development")
        return self

    def require_secret(self, name: str, value: SecretStr | None) -> None:
        # Each backend needs only its own secret.
        if name == "s3_secret_access_key" and self.storage_backend is not StorageBackend.S3:
            return
        if name == "media_signing_key" and self.storage_backend is not StorageBackend.FILESYSTEM:
            return
        super().require_secret(name, value)

    @property
    def internal_token(self) -> str:
        """The gateway's token for /internal/*; development falls back to a fixed one."""
        if self.media_internal_token is None:
            return DEVELOPMENT_INTERNAL_TOKEN
        return self.media_internal_token.get_secret_value()

    @property
    def signing_key(self) -> bytes:
        """The URL signing key; development falls back to a fixed, harmless one."""
        if self.media_signing_key is None:
            return b"picture-development-signing-key"
        return self.media_signing_key.get_secret_value().encode()
