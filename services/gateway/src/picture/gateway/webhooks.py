"""Outgoing client webhooks: a generation's status events POSTed to the ``webhook_url`` given
at submission, signed the Standard Webhooks way, retried with backoff, every attempt logged in
``gateway.webhook_deliveries``.

Targets must be https with a host that resolves only to public addresses (no loopback,
private, link-local, multicast or reserved ranges: SSRF). The check runs at submission and
again before every delivery (a name may be re-pointed), and a delivery connects to the
address it checked (:mod:`picture.common.egress`): DNS rebinding between the check and the
POST cannot point it elsewhere. Development and tests may allow http
and private targets (``PICTURE_WEBHOOK_ALLOW_PRIVATE_TARGETS``).

Signature (https://www.standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.database import autocommit
from picture.common.egress import IPAddress, is_public_address, pinned_request, system_resolver
from picture.common.messaging import Bus, Delivery, Retry, Route
from picture.common.settings import Environment
from picture.gateway.errors import InvalidField
from picture.gateway.live import generation_payload
from picture.gateway.settings import GatewaySettings
from picture.gateway.tables import webhook_deliveries, webhook_subscriptions

log = logging.getLogger(__name__)

WEBHOOK_CONSUMER = c.GATEWAY_WEBHOOKS.durable
MAX_URL_LENGTH = 2048
RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0)


class UnsafeTarget(ValueError):
    pass


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


async def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        answers = await asyncio.wait_for(system_resolver(host, port), 5)
    except (OSError, TimeoutError) as exc:
        raise UnsafeTarget(f"cannot resolve {host}") from exc
    try:
        return [ipaddress.ip_address(a.split("%")[0]) for a in answers]
    except ValueError as exc:
        raise UnsafeTarget(f"{host} resolves to something that is not an address") from exc


async def check_target(url: str, settings: GatewaySettings) -> IPAddress | None:
    """Raise UnsafeTarget unless ``url`` is an acceptable webhook target. Returns the checked
    address to connect to (None when private targets are allowed: connect by name)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget("URL too long")
    parts = urlsplit(url)
    relaxed = settings.webhook_allow_private_targets and settings.environment is not Environment.PRODUCTION
    allowed_schemes = {"https", "http"} if relaxed else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget("webhook_url must be https")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeTarget("webhook_url needs a host and no credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("bad port") from exc
    if relaxed:
        return None
    addresses = await _addresses(parts.hostname, port)
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise UnsafeTarget("webhook_url must resolve to public addresses only")
    return addresses[0]


async def subscribe(
    engine: AsyncEngine, settings: GatewaySettings, generation_id: uuid.UUID, user_id: uuid.UUID, url: str
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(webhook_subscriptions)
            .values(generation_id=generation_id, user_id=user_id, url=url)
            .on_conflict_do_nothing()
        )


async def validate(url: str | None, settings: GatewaySettings) -> None:
    if url is None:
        return
    if not settings.webhook_signing_secret:
        raise InvalidField("webhook_url", "webhooks are not enabled on this server")
    try:
        await check_target(url, settings)
    except UnsafeTarget as exc:
        raise InvalidField("webhook_url", str(exc)) from exc


# A generation's events can arrive out of order (relays publish concurrently; replicas share
# the consumer; retries): a state is sent only while no newer one has been, so a client never
# gets an older state after a newer one. The same version again (a retry, a redelivery) passes;
# its delivery row keeps it from being sent twice.
_CLAIM = text(
    """
    WITH subscription AS (
        SELECT url, sent_version FROM gateway.webhook_subscriptions WHERE generation_id = :g FOR UPDATE
    ), claimed AS (
        UPDATE gateway.webhook_subscriptions SET sent_version = :v
        WHERE generation_id = :g AND (SELECT sent_version FROM subscription) <= :v
        RETURNING url
    )
    SELECT (SELECT url FROM subscription) AS url, (SELECT url FROM claimed) IS NULL AS superseded
    """
)


class Dispatcher:
    def __init__(self, engine: AsyncEngine, settings: GatewaySettings) -> None:
        self.engine = engine
        self.settings = settings
        self.key = signing_key(settings.webhook_signing_secret)
        self.http = httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxies from the environment: the address check is ours
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def post(self, url: str, message_id: str, payload: dict[str, Any]) -> httpx.Response:
        """Check the target and POST the signed payload to the address that was checked."""
        address = await check_target(url, self.settings)
        body = json.dumps(payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.key, message_id, timestamp, body),
            "User-Agent": "picture-webhooks/1",
        }
        if address is None:
            return await self.http.post(url, content=body, headers=headers)
        request = pinned_request(self.http, "POST", httpx.URL(url), address, content=body, headers=headers)
        return await self.http.send(request)

    async def on_update(self, delivery: Delivery[c.GenerationUpdatedEvent]) -> None:
        generation = delivery.message.generation
        seq = delivery.raw.metadata.sequence.stream
        delivery_id = uuid.uuid5(generation.id, f"webhook:{seq}")
        async with autocommit(self.engine).connect() as conn:  # every event: keep it one round trip
            claim = (await conn.execute(_CLAIM, {"g": generation.id, "v": generation.version})).one()
            if claim.url is not None and claim.superseded:
                # a newer state was sent: this one (or its retry) is not sent any more
                await conn.execute(
                    text(
                        "UPDATE gateway.webhook_deliveries SET status = 'superseded' "
                        "WHERE id = :id AND status = 'pending'"
                    ),
                    {"id": delivery_id},
                )
        if claim.url is None or claim.superseded:
            return
        url = claim.url
        payload = {
            "type": f"generation.{generation.status.value}",
            "timestamp": delivery.envelope.occurred_at.isoformat(),
            "data": generation_payload(generation, self.settings.public_url),
        }
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(webhook_deliveries)
                .values(
                    id=delivery_id,
                    generation_id=generation.id,
                    event_seq=seq,
                    status="pending",
                    payload=payload,
                )
                .on_conflict_do_nothing()
            )
            row = (
                await conn.execute(
                    text(
                        "UPDATE gateway.webhook_deliveries SET attempts = attempts + 1 "
                        "WHERE id = :id AND status = 'pending' RETURNING attempts"
                    ),
                    {"id": delivery_id},
                )
            ).first()
        if row is None:
            return  # already delivered (or given up): a redelivery of the event
        attempts = int(row[0])
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self.post(url, str(delivery_id), payload)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except UnsafeTarget as exc:
            error = f"unsafe target: {exc}"
            attempts = self.settings.webhook_max_attempts  # never retried
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        final = error is None or attempts >= self.settings.webhook_max_attempts
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE gateway.webhook_deliveries SET last_status_code = :code, last_error = :error, "
                    "status = :status, delivered_at = CASE WHEN :ok THEN now() ELSE delivered_at END "
                    "WHERE id = :id"
                ),
                {
                    "id": delivery_id,
                    "code": status_code,
                    "error": error,
                    "ok": error is None,
                    "status": "delivered" if error is None else ("failed" if final else "pending"),
                },
            )
        if not final:
            delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)]
            raise Retry(f"webhook to {urlsplit(url).hostname} failed: {error}", delay=delay)


async def start_dispatcher(bus: Bus, engine: AsyncEngine, settings: GatewaySettings) -> Dispatcher | None:
    if not settings.webhook_signing_secret:
        return None
    dispatcher = Dispatcher(engine, settings)
    await bus.start_declared(
        c.GATEWAY_WEBHOOKS,
        [Route(c.GENERATION_UPDATED, dispatcher.on_update)],
        ack_wait_seconds=settings.webhook_timeout_seconds + 20,
        max_deliver=settings.webhook_max_attempts + 2,
        retry_delays=RETRY_DELAYS,
    )
    return dispatcher
