"""Accepting a generation: the gateway's own durable decision, in one statement.

One SQL statement (an implicit transaction: all of it or none) charges the quota and takes the
concurrency lease (``gateway.reserve``), writes the generation's first view (version 0,
"pending") into the read model, and writes the CREATE command for the orchestrator into the
gateway's outbox with the generation id as its id (also its Nats-Msg-Id), and subscribes the
client's webhook, so the subscription exists before any event of the generation does. Right after, the
outbox relay publishes the command from memory; if the process dies first, the relay's poll
publishes the row later, and JetStream drops a second publish of the same id. So a 202 means
the generation is durable, without a round trip to the orchestrator, and a client reading the
id it was given finds it (:mod:`picture.gateway.read_model`).

An Idempotency-Key replay finds its id charged already: nothing is written again and the
stored view is answered.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.database import autocommit
from picture.common.outbox import OutboxRelay, outbox_message
from picture.gateway.auth import Principal
from picture.gateway.limits import RESERVE_CALL, Limiter, store_guard
from picture.gateway.read_model import GenerationViews, view_row

# The f-string adds a constant (the reserve call), never input.
_ACCEPT = text(
    f"""
    WITH r AS (SELECT * FROM {RESERVE_CALL}),
    v AS (
      INSERT INTO gateway.generation_views (id, user_id, version, status, view, created_at, updated_at)
      SELECT :id, :user_id, :version, :status, :view, :created_at, :updated_at FROM r
      WHERE r.outcome = 'ok' AND CAST(:id AS uuid) = ANY(r.charged)
      ON CONFLICT (id) DO NOTHING
      RETURNING id
    ),
    o AS (
      INSERT INTO gateway.outbox (id, subject, payload, trace_context, created_at, available_at)
      SELECT id, :subject, :payload, CAST(:trace_context AS jsonb), :created_at, :created_at FROM v
      RETURNING id
    ),
    w AS (
      INSERT INTO gateway.webhook_subscriptions (generation_id, user_id, url)
      SELECT id, :user_id, CAST(:webhook_url AS text) FROM v WHERE CAST(:webhook_url AS text) IS NOT NULL
      ON CONFLICT DO NOTHING
    )
    SELECT r.outcome, r.charged, r.limit_value, r.reset_in, EXISTS (SELECT 1 FROM o) AS written FROM r
    """  # noqa: S608
)


@dataclass(frozen=True)
class Accepted:
    view: c.GenerationView
    new: bool  # False: the replay of a generation accepted before (same Idempotency-Key)


class Acceptance:
    def __init__(
        self, engine: AsyncEngine, limiter: Limiter, relay: OutboxRelay, views: GenerationViews
    ) -> None:
        self._single_statements = autocommit(engine)
        self.limiter = limiter
        self.relay = relay
        self.views = views

    async def accept(
        self,
        user: Principal,
        generation_id: uuid.UUID,
        model: c.ModelSpec,
        parameters: c.GenerationParameters,
        *,
        reuse: bool = True,
        priority: int = 0,
        webhook_url: str | None = None,
    ) -> Accepted | None:
        """Charge, record and announce one generation (429 at a limit, 503 with the store away).
        None: the id was charged by an older gateway that kept no view (ask the orchestrator)."""
        now = datetime.now(UTC)
        view = c.GenerationView(
            id=generation_id,
            user_id=user.user_id,
            status=c.GenerationStatus.PENDING,
            model=model.name,
            parameters=parameters,
            created_at=now,
            history=(c.StatusChange(status=c.GenerationStatus.PENDING, at=now, reason="accepted"),),
            priority=priority,
            version=0,
        )
        command = c.CreateGenerationCommand(
            generation_id=generation_id,
            user_id=user.user_id,
            model=model,
            parameters=parameters,
            reuse=reuse,
            priority=priority,
            accepted_at=now,
        )
        message = outbox_message(c.CREATE_GENERATION, command, message_id=generation_id)
        params = {
            **self.limiter.reservation(user.user_id, user.email, user.is_anonymous, [generation_id]),
            **view_row(view),
            "subject": message.subject,
            "payload": message.payload,
            "trace_context": json.dumps(message.trace_context),
            "webhook_url": webhook_url,
        }
        async with store_guard("accept"), self._single_statements.connect() as conn:
            result = (await conn.execute(_ACCEPT, params)).one()
        self.limiter.charged_or_raise(result)
        if result.written:
            self.relay.committed([message])
            return Accepted(view, new=True)
        stored = await self.views.get(generation_id)
        if stored is None or stored.user_id != user.user_id:
            return None
        return Accepted(stored.view, new=False)
