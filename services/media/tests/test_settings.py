"""Settings: comma lists, production refusals."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from picture.media.settings import DEVELOPMENT_INTERNAL_TOKEN, MediaSettings, StorageBackend

REAL_KEY = "a-real-signing-key-with-enough-entropy"
TOKEN = "a-real-internal-token-with-enough-entropy"


def test_allowed_hosts_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICTURE_DOWNLOAD_ALLOWED_HOSTS", "replicate.delivery, PBXT.replicate.delivery,")
    settings = MediaSettings()
    assert settings.download_allowed_hosts == ("replicate.delivery", "pbxt.replicate.delivery")


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PICTURE_HTTP_PORT", "PICTURE_STORAGE_BACKEND", "PICTURE_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    settings = MediaSettings()
    assert settings.http_port == 8083
    assert settings.storage_backend is StorageBackend.FILESYSTEM
    assert settings.download_max_bytes == 50 * 1024 * 1024
    assert settings.download_timeout_seconds == 60
    assert settings.webp_quality == 88
    assert settings.webp_method == 2
    assert settings.max_pixels == 40_000_000


@pytest.mark.parametrize("method", ["-1", "7"])
def test_webp_method_is_libwebps_range(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    monkeypatch.setenv("PICTURE_WEBP_METHOD", method)
    with pytest.raises(ValidationError, match="webp_method"):
        MediaSettings()


def test_insecure_loopback_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="INSECURE_LOOPBACK"):
        MediaSettings(
            environment="production",
            media_signing_key=REAL_KEY,
            media_internal_token=TOKEN,
            download_allow_insecure_loopback=True,
        )


def test_insecure_loopback_allowed_in_development_and_test() -> None:
    assert MediaSettings(download_allow_insecure_loopback=True).download_allow_insecure_loopback
    settings = MediaSettings(
        environment="test", media_signing_key=REAL_KEY, download_allow_insecure_loopback=True
    )
    assert settings.download_allow_insecure_loopback


@pytest.mark.parametrize("key", [None, "changeme", "secret"])
def test_signing_key_required_in_production(key: str | None) -> None:
    with pytest.raises(ValidationError, match="SIGNING_KEY"):
        MediaSettings(environment="production", media_signing_key=key)


def test_production_filesystem_needs_no_s3_secret() -> None:
    settings = MediaSettings(environment="production", media_signing_key=REAL_KEY, media_internal_token=TOKEN)
    assert settings.signing_key == REAL_KEY.encode()
    assert settings.internal_token == TOKEN


def test_internal_token_required_in_production_with_a_development_fallback() -> None:
    with pytest.raises(ValidationError, match="MEDIA_INTERNAL_TOKEN"):
        MediaSettings(environment="production", media_signing_key=REAL_KEY)
    assert MediaSettings(environment="development").internal_token == DEVELOPMENT_INTERNAL_TOKEN


def test_production_s3_needs_its_secret() -> None:
    with pytest.raises(ValidationError, match="S3_SECRET_ACCESS_KEY"):
        MediaSettings(environment="production", storage_backend="s3", media_internal_token=TOKEN)
    settings = MediaSettings(
        environment="production",
        storage_backend="s3",
        s3_secret_access_key=REAL_KEY,
        media_internal_token=TOKEN,
    )
    assert settings.storage_backend is StorageBackend.S3
