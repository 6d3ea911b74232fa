"""In-memory file delivery, like replicate.delivery: signed, expiring URLs to rendered outputs.

A token is ``<file id>.<expiry unix seconds>.<HMAC>``; after the expiry (or once the file was
evicted because more than ``max_files`` are stored) the URL answers 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One rendered output."""

    filename: str
    content_type: str
    data: bytes
    expires_at: float


class FileStore:
    """Bounded store of rendered files with HMAC-signed, expiring tokens."""

    def __init__(self, ttl_seconds: float, max_files: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_files
        self._key = secrets.token_bytes(32)
        self._files: OrderedDict[str, StoredFile] = OrderedDict()

    def __len__(self) -> int:
        return len(self._files)

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def put(self, filename: str, content_type: str, data: bytes) -> str:
        """Store ``data`` and return the URL path ``/delivery/<token>/<filename>``."""
        file_id = secrets.token_hex(12)
        now = time.time()
        expires_at = now + self._ttl
        while self._files and next(iter(self._files.values())).expires_at <= now:
            self._files.popitem(last=False)
        self._files[file_id] = StoredFile(filename, content_type, data, expires_at)
        while len(self._files) > self._max:
            self._files.popitem(last=False)
        payload = f"{file_id}.{int(expires_at) + 1}"
        return f"/delivery/{payload}.{self._sign(payload)}/{filename}"

    def get(self, token: str, filename: str) -> StoredFile | None:
        """Return the file for a valid, unexpired token, else ``None``."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        file_id, expiry, signature = parts
        if not hmac.compare_digest(self._sign(f"{file_id}.{expiry}"), signature):
            return None
        stored = self._files.get(file_id)
        now = time.time()
        if stored is None or stored.filename != filename:
            return None
        if now >= stored.expires_at:
            del self._files[file_id]
            return None
        return stored

    def clear(self) -> None:
        """Forget every file."""
        self._files.clear()
