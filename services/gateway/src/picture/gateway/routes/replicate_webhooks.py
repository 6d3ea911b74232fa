"""POST /v1/webhooks/replicate: Replicate's prediction webhooks, verified and handed over.

Replicate signs each delivery per Standard Webhooks (https://www.standardwebhooks.com):
``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature`` (space-separated
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, the key being the base64 after
``whsec_`` of PICTURE_REPLICATE_WEBHOOK_SECRET). A delivery is accepted only when a signature
matches (constant-time), the timestamp is within five minutes of now, and its id was not seen
before (ids are remembered in ``gateway.replicate_webhooks``; a timestamp older than the window
is refused anyway, so ids are forgotten after an hour). The prediction JSON then goes to the
replicate adapter as ``picture.cmd.adapter.webhook``, with the attempt the adapter put in the
URL's query (``generation_id``, ``attempt``); the answer (204) does not wait for it.

Refusals: 400 missing headers or a body that is not a JSON object, 401 bad signature or stale
timestamp, 409 replayed id, 413 body too large, 503 webhooks not configured or NATS down
(Replicate retries: the id is forgotten again so the retry is accepted).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Column, DateTime, String, Table, delete, func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.contracts import REPLICATE_WEBHOOK, ReplicateWebhookCommand
from picture.common.database import autocommit, schema_metadata
from picture.common.ids import derived_id
from picture.gateway.deps import BackendDep, EngineDep, SettingsDep
from picture.gateway.errors import GatewayError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

TOLERANCE_SECONDS = 300
REMEMBER_SECONDS = 3600
_REMEMBERED = text(f"interval '{REMEMBER_SECONDS} seconds'")
MAX_BODY_BYTES = 1_000_000

# The webhook ids already accepted (replay protection); revision 0003 creates it.
replicate_webhooks = Table(
    "replicate_webhooks",
    schema_metadata("gateway"),
    Column("webhook_id", String(128), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class WebhookRefused(GatewayError):
    """Replicate retries a refused webhook: 503 when it may pass, 400/401/409/413 when it never will."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(status, "webhook-refused", "Webhook refused", detail, field=field)


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("PICTURE_REPLICATE_WEBHOOK_SECRET is not whsec_<base64>") from exc


def expected_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(_key(secret), content, hashlib.sha256).digest()


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> str:
    """The webhook id when the delivery is authentic and fresh; raises :class:`WebhookRefused`."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    for name, value in (
        ("webhook-id", webhook_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signatures),
    ):
        if not value:
            raise WebhookRefused(400, f"the {name} header is missing", field=name)
    if len(webhook_id) > 128:
        raise WebhookRefused(400, "webhook-id is too long", field="webhook-id")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRefused(
            400, "webhook-timestamp is not unix seconds", field="webhook-timestamp"
        ) from None
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        raise WebhookRefused(401, "webhook-timestamp is outside the tolerance window", "webhook-timestamp")
    expected = expected_signature(secret, webhook_id, timestamp, body)
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return webhook_id
    raise WebhookRefused(401, "no valid webhook signature", field="webhook-signature")


async def _remember(engine: AsyncEngine, webhook_id: str) -> bool:
    """Record the id; False when it was already there (a replay). Single statements: no
    transaction needed (the occasional cleanup is independent of the insert)."""
    async with autocommit(engine).connect() as conn:
        inserted = await conn.execute(
            insert(replicate_webhooks)
            .values(webhook_id=webhook_id)
            .on_conflict_do_nothing(index_elements=["webhook_id"])
            .returning(replicate_webhooks.c.webhook_id)
        )
        fresh = inserted.first() is not None
        if fresh and random.random() < 0.02:
            await conn.execute(
                delete(replicate_webhooks).where(
                    replicate_webhooks.c.received_at
                    < func.now() - text(f"interval '{REMEMBER_SECONDS} seconds'")
                )
            )
    return fresh


async def _forget(engine: AsyncEngine, webhook_id: str) -> None:
    async with autocommit(engine).connect() as conn:
        await conn.execute(delete(replicate_webhooks).where(replicate_webhooks.c.webhook_id == webhook_id))


def _attempt(request: Request) -> dict[str, Any]:
    """The attempt named in the URL's query (generation_id, attempt), when both are valid."""
    try:
        generation_id = uuid.UUID(request.query_params.get("generation_id", ""))
        attempt = int(request.query_params.get("attempt", ""))
    except ValueError:
        return {}
    return {"generation_id": generation_id, "attempt": attempt} if attempt > 0 else {}


@router.post(
    "/replicate",
    status_code=204,
    summary="Replicate prediction webhooks (signed; Standard Webhooks)",
    include_in_schema=False,
)
async def replicate_webhook(
    request: Request, settings: SettingsDep, engine: EngineDep, backend: BackendDep
) -> Response:
    secret = settings.replicate_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise WebhookRefused(503, "Replicate webhooks are not configured")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise WebhookRefused(413, "the webhook body is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # bounded even without a Content-Length
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise WebhookRefused(413, "the webhook body is too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    headers = {k.lower(): v for k, v in request.headers.items()}
    webhook_id = verify(secret.get_secret_value(), headers, body, time.time())
    try:
        prediction = json.loads(body)
    except ValueError:
        raise WebhookRefused(400, "the webhook body is not JSON", field="body") from None
    if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
        raise WebhookRefused(400, "the webhook body is not a prediction object", field="body")
    if not await _remember(engine, webhook_id):
        raise WebhookRefused(409, "this webhook-id was already received", field="webhook-id")
    try:
        await backend.bus.publish(
            REPLICATE_WEBHOOK,
            ReplicateWebhookCommand(
                webhook_id=webhook_id,
                prediction=prediction,
                received_at=datetime.now(UTC),
                **_attempt(request),
            ),
            message_id=derived_id("replicate.webhook", webhook_id),
        )
    except Exception as exc:
        log.warning("handing webhook %s to the adapter failed: %s", webhook_id, exc)
        await _forget(engine, webhook_id)  # Replicate retries; accept the retry
        raise WebhookRefused(503, "the webhook could not be handed over; retry") from exc
    return Response(status_code=204)
