"""Charging quota around a submission, and settling it when generations end.

Route handlers take :data:`ChargeDep` and wrap the orchestrator call::

    async with charge([generation_id]):
        view = await backend.create_generation(...)

The quota and the concurrency leases are reserved first (429 when a limit is reached); if the
body raises (the orchestrator refused or did not answer), the charge is undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from picture.common import contracts as c
from picture.common.messaging import Bus, Delivery, Route
from picture.common.outbox import OutboxRelay
from picture.gateway import webhooks
from picture.gateway.acceptance import Acceptance
from picture.gateway.auth import CurrentUser, Principal, TokenVerifier
from picture.gateway.deps import StateDep
from picture.gateway.limits import Limiter
from picture.gateway.live import Hub
from picture.gateway.read_model import GenerationViews
from picture.gateway.settings import GatewaySettings
from picture.gateway.tables import outbox

log = logging.getLogger(__name__)

REFUNDED = frozenset({c.GenerationStatus.FAILED, c.GenerationStatus.CANCELLED})
GENERATION_EVENTS_CONSUMER = c.GATEWAY_QUOTA.durable


class Charge:
    def __init__(self, limiter: Limiter, user: Principal, settings: GatewaySettings) -> None:
        self.limiter = limiter
        self.user = user
        self.settings = settings

    @asynccontextmanager
    async def __call__(
        self, generation_ids: Sequence[uuid.UUID], *, webhook_url: str | None = None
    ) -> AsyncIterator[list[uuid.UUID]]:
        await webhooks.validate(webhook_url, self.settings)  # 422 before anything is charged
        charged = await self.limiter.reserve(
            self.user.user_id, self.user.email, self.user.is_anonymous, generation_ids
        )
        try:
            yield charged
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.limiter.undo(charged))
            raise
        if webhook_url is not None:
            for generation_id in generation_ids:
                await webhooks.subscribe(
                    self.limiter.engine, self.settings, generation_id, self.user.user_id, webhook_url
                )


async def _charge(state: StateDep, user: CurrentUser) -> Charge:
    return Charge(state.limiter, user, state.settings)


ChargeDep = Annotated[Charge, Depends(_charge)]


async def start_generation_events(bus: Bus, limiter: Limiter, views: GenerationViews) -> None:
    """Durable consumer of generation events (one delivery per event across the replicas):
    the read model keeps the newest view; any terminal state releases the concurrency lease;
    failed and cancelled refund the quota exactly once."""

    async def on_update(delivery: Delivery[c.GenerationUpdatedEvent]) -> None:
        generation = delivery.message.generation
        await views.apply([generation])
        if generation.status.is_terminal:
            refunded = await limiter.settle(generation.id, refund=generation.status in REFUNDED)
            if refunded:
                log.info("refunded generation %s (%s)", generation.id, generation.status.value)

    await bus.start_declared(c.GATEWAY_QUOTA, [Route(c.GENERATION_UPDATED, on_update)])


@dataclass(frozen=True)
class Background:
    """What :func:`start_background` built for the routes, and the function that stops it
    (called from the app's lifespan)."""

    views: GenerationViews
    acceptance: Acceptance
    hub: Hub
    stop: Callable[[], Awaitable[None]]


async def start_background(bus: Bus, limiter: Limiter, verifier: TokenVerifier) -> Background:
    """The gateway's own background work: acceptance and its outbox relay, the generation
    events consumer (read model, settlement), the request-rate sweeper, live updates."""
    engine = limiter.engine
    views = GenerationViews(limiter.pool)
    relay = OutboxRelay(engine, bus, outbox)
    acceptance = Acceptance(engine, limiter, relay, views)
    await bus.ensure_streams()
    relaying = asyncio.ensure_future(relay.run())
    await start_generation_events(bus, limiter, views)
    dispatcher = await webhooks.start_dispatcher(bus, limiter.engine, limiter.settings)
    hub = Hub(bus.js)  # live updates: one consumer per process, fanned out to the streams
    await hub.start()

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await limiter.sweep()
            except Exception as exc:
                log.warning("sweeping request rates failed: %s", exc)

    sweeper = asyncio.ensure_future(sweep_forever())

    async def stop() -> None:
        for task in (sweeper, relaying):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await hub.stop()
        if dispatcher is not None:
            await dispatcher.aclose()
        await verifier.aclose()

    return Background(views, acceptance, hub, stop)
