"""Signed, expiring URLs for the filesystem backend's ``GET /objects/{key}``.

``sig`` is the hex HMAC-SHA256, under the service's signing key, of ``key`` and ``expires``
(unix seconds) joined by a newline. Verification uses a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


class UrlSigner:
    def __init__(self, key: bytes, base_url: str) -> None:
        self._key = key
        self.base_url = base_url.rstrip("/")

    def signature(self, key: str, expires: int) -> str:
        payload = f"{key}\n{expires}".encode()
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def url(self, key: str, expires_in: int, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + expires_in)
        query = urlencode({"expires": expires, "sig": self.signature(key, expires)})
        return f"{self.base_url}/objects/{quote(key, safe='/')}?{query}"

    def verify(self, key: str, expires: int, sig: str, *, now: float | None = None) -> bool:
        """True when ``sig`` is the signature of key and expires, and it has not expired."""
        if expires < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self.signature(key, expires), sig.lower())
