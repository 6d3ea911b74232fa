"""What every handler of the orchestrator works with."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from picture.orchestrator.outbox import OutboxRelay
from picture.orchestrator.settings import OrchestratorSettings


@dataclass(frozen=True)
class Context:
    engine: AsyncEngine
    relay: OutboxRelay
    settings: OrchestratorSettings
    # Set after every commit that frees a slot or queues work: the scheduler runs a round.
    scheduler_wake: asyncio.Event = field(default_factory=asyncio.Event)

    def now(self) -> datetime:
        """The time handlers decide with and stamp their changes with."""
        return datetime.now(UTC)

    def notify(self, *, schedule: bool = True) -> None:
        """After a commit: the relay publishes its messages; the scheduler runs a round unless
        ``schedule`` is False (the change neither freed a slot nor queued work)."""
        self.relay.notify()
        if schedule:
            self.scheduler_wake.set()
