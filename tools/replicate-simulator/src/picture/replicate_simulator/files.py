"""File delivery, like replicate.delivery: signed, expiring URLs to rendered outputs.

A token is ``<file id>.<expiry unix seconds>.<HMAC>``; after the expiry (or once the file was
evicted because more than ``max_files`` are stored) the URL answers 404. With a data folder the
files and the signing key live on disk (``<root>/files/<id>/<filename>``, ``<root>/files/key``),
so URLs handed out before a restart keep working after it; without one, in memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from picture.replicate_simulator.journal import write_atomically


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One rendered output."""

    filename: str
    content_type: str
    data: bytes
    expires_at: float


class FileStore:
    """Bounded store of rendered files with HMAC-signed, expiring tokens (on disk under
    ``root`` when given)."""

    def __init__(self, ttl_seconds: float, max_files: int, root: Path | None = None) -> None:
        self._ttl = ttl_seconds
        self._max = max_files
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._dir = root / "files" if root is not None else None
        self._key = secrets.token_bytes(32) if self._dir is None else self._load()

    def _load(self) -> bytes:
        assert self._dir is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        key_file = self._dir / "key"
        if not key_file.exists():
            write_atomically(key_file, secrets.token_bytes(32))
        found = []
        for meta_file in self._dir.glob("*/meta.json"):
            try:
                meta = json.loads(meta_file.read_bytes())
                data = (meta_file.parent / meta["filename"]).read_bytes()
            except (OSError, ValueError, KeyError):
                continue  # killed between the data and its meta: never handed out
            found.append(
                (
                    meta_file.parent.name,
                    StoredFile(meta["filename"], meta["content_type"], data, meta["expires_at"]),
                )
            )
        for file_id, stored in sorted(found, key=lambda item: item[1].expires_at):
            self._files[file_id] = stored
        return key_file.read_bytes()

    def __len__(self) -> int:
        return len(self._files)

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def _drop_oldest(self) -> None:
        file_id, _ = self._files.popitem(last=False)
        if self._dir is not None:
            shutil.rmtree(self._dir / file_id, ignore_errors=True)

    def put(self, filename: str, content_type: str, data: bytes) -> str:
        """Store ``data`` and return the URL path ``/delivery/<token>/<filename>``."""
        file_id = secrets.token_hex(12)
        now = time.time()
        expires_at = now + self._ttl
        while self._files and next(iter(self._files.values())).expires_at <= now:
            self._drop_oldest()
        stored = StoredFile(filename, content_type, data, expires_at)
        if self._dir is not None:
            folder = self._dir / file_id
            folder.mkdir()
            (folder / filename).write_bytes(data)
            meta = {"filename": filename, "content_type": content_type, "expires_at": expires_at}
            write_atomically(folder / "meta.json", json.dumps(meta).encode())
        self._files[file_id] = stored
        while len(self._files) > self._max:
            self._drop_oldest()
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
            self._files.move_to_end(file_id, last=False)
            self._drop_oldest()
            return None
        return stored

    def clear(self) -> None:
        """Forget every file."""
        while self._files:
            self._drop_oldest()
