"""Client webhooks on a real PostgreSQL: a generation's states reach the client in version
order; an older state that arrives after a newer one was sent is not sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import httpx
from nats.aio.msg import Msg
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.messaging import Delivery
from picture.gateway.settings import GatewaySettings
from picture.gateway.tables import webhook_subscriptions
from picture.gateway.webhooks import Dispatcher

SETTINGS = GatewaySettings(jwks_url="https://x.supabase.co/jwks", webhook_allow_private_targets=True)


class RecordingDispatcher(Dispatcher):
    """The real dispatcher, with the POST recorded instead of sent."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, SETTINGS)
        self.sent: list[str] = []

    async def post(self, url: str, message_id: str, payload: dict[str, Any]) -> httpx.Response:
        self.sent.append(payload["data"]["status"])
        return httpx.Response(204)


def update(
    generation_id: uuid.UUID, user_id: uuid.UUID, status: c.GenerationStatus, version: int, seq: int
) -> Any:
    view = c.GenerationView(
        id=generation_id,
        user_id=user_id,
        status=status,
        model="flux-schnell",
        parameters=c.GenerationParameters(prompt="a fox", width=512, height=512),
        created_at=datetime.now(UTC),
        version=version,
    )
    event = c.GenerationUpdatedEvent(generation=view)
    raw = SimpleNamespace(metadata=SimpleNamespace(sequence=SimpleNamespace(stream=seq)))
    return Delivery(event, c.Envelope.wrap(event), "", 1, cast(Msg, raw))


async def test_an_older_state_is_not_sent_after_a_newer_one(engine: AsyncEngine) -> None:
    generation_id, user_id = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            insert(webhook_subscriptions).values(
                generation_id=generation_id, user_id=user_id, url="http://127.0.0.1:9/hook"
            )
        )
    dispatcher = RecordingDispatcher(engine)
    try:
        S = c.GenerationStatus
        # relays and replicas deliver out of order: processing (v2) after completed (v4)
        for status, version, seq in [(S.QUEUED, 1, 10), (S.COMPLETED, 4, 12), (S.PROCESSING, 2, 11)]:
            await dispatcher.on_update(update(generation_id, user_id, status, version, seq))
        # the same state again (JetStream redelivered it): not sent twice
        await dispatcher.on_update(update(generation_id, user_id, S.COMPLETED, 4, 12))
    finally:
        await dispatcher.aclose()
    assert dispatcher.sent == ["queued", "completed"]


async def test_no_subscription_sends_nothing(engine: AsyncEngine) -> None:
    dispatcher = RecordingDispatcher(engine)
    try:
        await dispatcher.on_update(update(uuid.uuid4(), uuid.uuid4(), c.GenerationStatus.COMPLETED, 3, 20))
    finally:
        await dispatcher.aclose()
    assert dispatcher.sent == []
