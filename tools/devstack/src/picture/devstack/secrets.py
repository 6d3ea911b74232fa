"""Development secrets: generated once into ``var/dev.env`` (mode 600), never committed."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def _generate() -> dict[str, str]:
    return {
        "PICTURE_JWT_SECRET": secrets.token_urlsafe(48),
        "PICTURE_REPLICATE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "PICTURE_MEDIA_SIGNING_KEY": secrets.token_urlsafe(32),
    }


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def ensure_dev_env(path: Path) -> dict[str, str]:
    """Read the development secrets, creating any that are missing (keeps existing ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = read_env_file(path) if path.exists() else {}
    missing = {k: v for k, v in _generate().items() if k not in values}
    if missing or not path.exists():
        values.update(missing)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# Development secrets, generated once by picture-devstack. Never commit.\n")
            for key, value in values.items():
                out.write(f"{key}={value}\n")
    os.chmod(path, 0o600)
    return values
