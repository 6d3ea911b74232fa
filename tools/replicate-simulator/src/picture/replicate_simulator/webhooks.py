"""Standard Webhooks signing and background delivery of prediction events with retries.

Each event gets a ``webhook-id`` (``msg_`` + random) that stays the same across retries;
``webhook-timestamp`` and ``webhook-signature`` are computed per attempt. Deliveries of one
prediction are sent in order (an event waits for the previous event's delivery to finish).
Failures never affect the prediction.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

logger = logging.getLogger(__name__)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` header value (``v1,<base64 HMAC-SHA256>``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookDispatcher:
    """Delivers webhook events as background tasks through one shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        secret: str,
        *,
        max_attempts: int,
        backoff_seconds: float,
        on_result: Callable[[bool], None],
        dropped: Callable[[], bool],
    ) -> None:
        self._client = client
        self._secret = secret
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._on_result = on_result
        self._dropped = dropped
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}

    def send(self, url: str, prediction_id: str, payload: dict[str, Any]) -> None:
        """Schedule delivery of ``payload`` (a prediction snapshot) to ``url``."""
        if self._dropped():
            return
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        msg_id = "msg_" + secrets.token_urlsafe(18)
        previous = self._last.get(prediction_id)
        task = asyncio.create_task(self._deliver(url, msg_id, body, previous))
        self._tasks.add(task)
        self._last[prediction_id] = task

        def _done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._last.get(prediction_id) is finished:
                del self._last[prediction_id]

        task.add_done_callback(_done)

    async def _attempt(self, url: str, msg_id: str, body: bytes) -> bool:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, msg_id, timestamp, body),
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.info("webhook %s to %s failed: %s", msg_id, url, exc)
            return False
        return 200 <= response.status_code < 300

    async def _deliver(self, url: str, msg_id: str, body: bytes, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        for attempt in range(self._max_attempts):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            ok = await self._attempt(url, msg_id, body)
            self._on_result(ok)
            if ok:
                return
        logger.warning("webhook %s to %s abandoned after %d attempts", msg_id, url, attempt + 1)

    async def aclose(self) -> None:
        """Cancel pending deliveries (the HTTP client is owned by the lifespan)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._last.clear()
