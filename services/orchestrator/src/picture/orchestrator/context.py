"""What every handler of the orchestrator works with."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.orchestrator.outbox import OutboxRelay
from picture.orchestrator.settings import OrchestratorSettings


@dataclass(frozen=True)
class Context:
    engine: AsyncEngine
    relay: OutboxRelay
    settings: OrchestratorSettings
    # Set after every commit that frees a slot or queues work: the scheduler runs a round.
    scheduler_wake: asyncio.Event = field(default_factory=asyncio.Event)

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction whose outbox messages are published as soon as it commits."""
        return self.relay.transaction()

    def now(self) -> datetime:
        """The time handlers decide with and stamp their changes with."""
        return datetime.now(UTC)

    def notify(self, *, schedule: bool = True) -> None:
        """After a commit: the scheduler runs a round unless ``schedule`` is False (the change
        neither freed a slot nor queued work). Delayed messages are the relay's poll's."""
        if schedule:
            self.scheduler_wake.set()
