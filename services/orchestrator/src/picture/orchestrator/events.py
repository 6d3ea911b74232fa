"""What the orchestrator does with the other services' events, and with an event that failed
on every delivery.

Every handler has one shape: lock the generation, decide with the pure state machine, persist
the decision and what follows into the outbox, commit, wake the relay (and the scheduler when a
slot may be free). Events of an older attempt, or after the generation moved past them, are
ignored, which makes redelivery harmless.
"""

from __future__ import annotations

import uuid
from typing import Any

from picture.common import contracts as c
from picture.common.messaging import Delivery
from picture.orchestrator.context import Context
from picture.orchestrator.lifecycle import lock, settle
from picture.orchestrator.metrics import GENERATION_QUEUE_WAIT
from picture.orchestrator.state_machine import Advance, Decision, DiscardObjects, Event, Ignore, Poisoned


async def _handle(ctx: Context, generation_id: uuid.UUID, event: Event) -> tuple[Decision, Any]:
    """Lock, decide, persist, in one transaction. Returns the decision and the row before it."""
    async with ctx.transaction() as conn:
        row = await lock(conn, generation_id)
        return await settle(ctx, conn, row, event), row


async def on_prediction(ctx: Context, delivery: Delivery[c.PredictionEvent]) -> None:
    event = delivery.message
    decision, row = await _handle(ctx, event.generation_id, event)
    if isinstance(decision, Ignore):
        return
    if event.status is c.PredictionStatus.STARTED:
        GENERATION_QUEUE_WAIT.labels(row.model).observe((ctx.now() - row.created_at).total_seconds())
    # started, or on to download: still in flight, no slot freed
    ctx.notify(schedule=not isinstance(decision, Advance))


async def on_media_stored(ctx: Context, delivery: Delivery[c.MediaStoredEvent]) -> None:
    event = delivery.message
    decision, _ = await _handle(ctx, event.generation_id, event)
    if isinstance(decision, Ignore):
        return
    # recorded: still in flight until the catalog has the image
    ctx.notify(schedule=isinstance(decision, DiscardObjects))


async def on_media_failed(ctx: Context, delivery: Delivery[c.MediaFailedEvent]) -> None:
    event = delivery.message
    decision, _ = await _handle(ctx, event.generation_id, event)
    if not isinstance(decision, Ignore):
        ctx.notify()


async def on_image_created(ctx: Context, delivery: Delivery[c.ImageCreatedEvent]) -> None:
    event = delivery.message
    decision, _ = await _handle(ctx, event.generation_id, event)
    if not isinstance(decision, Ignore):
        ctx.notify()


async def on_poison(ctx: Context, delivery: Delivery[Any], exc: BaseException) -> None:
    """An event failed on every delivery: end its generation as failed instead of leaving it
    waiting for the sweeper's timeout."""
    generation_id = getattr(delivery.message, "generation_id", None)
    if generation_id is None:
        return
    poisoned = Poisoned(delivery.envelope.type, type(exc).__name__, str(exc))
    decision, _ = await _handle(ctx, generation_id, poisoned)
    if not isinstance(decision, Ignore):
        ctx.notify()
