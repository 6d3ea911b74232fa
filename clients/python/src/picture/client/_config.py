"""Where the SDK and the CLI find the base URL and the token.

Token: the ``token`` argument, else ``PICTURE_TOKEN``, else the file written by
``picture login`` (``$PICTURE_CONFIG_DIR/config.json``, default ``~/.config/picture/config.json``,
mode 600). Base URL: the argument, else ``PICTURE_BASE_URL``, else the file, else
``http://127.0.0.1:8080``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def config_dir() -> Path:
    explicit = os.environ.get("PICTURE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "picture"


def config_path() -> Path:
    return config_dir() / "config.json"


def load_config() -> dict[str, Any]:
    try:
        data = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_config(values: dict[str, Any]) -> Path:
    """Write the config file readable by its owner only (0600, directory 0700)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    merged = {**load_config(), **values}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(merged, handle, indent=2)
        handle.write("\n")
    path.chmod(0o600)  # an existing file keeps its mode on open(): make sure
    return path


def resolve_token(token: str | None) -> str | None:
    if token:
        return token
    env = os.environ.get("PICTURE_TOKEN")
    if env:
        return env
    stored = load_config().get("token")
    return stored if isinstance(stored, str) and stored else None


def resolve_base_url(base_url: str | None) -> str:
    chosen = (
        base_url or os.environ.get("PICTURE_BASE_URL") or load_config().get("base_url") or DEFAULT_BASE_URL
    )
    return str(chosen).rstrip("/")
