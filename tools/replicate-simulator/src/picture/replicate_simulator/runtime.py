"""Mutable runtime behaviour (the control API's config) and request/event counters."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from picture.replicate_simulator.models import ControlConfig, ControlConfigUpdate
from picture.replicate_simulator.settings import SimulatorSettings


@dataclass(slots=True)
class Stats:
    """Counters reported by ``GET /_control/stats``."""

    requests: int = 0  # every /v1 request that arrived (forced errors and 401s included)
    creates: int = 0
    gets: int = 0
    cancels: int = 0
    lists: int = 0
    webhooks_sent: int = 0
    webhooks_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Counters as a JSON-ready dict."""
        return asdict(self)


class RuntimeControl:
    """Current :class:`ControlConfig` plus the pause gate and forced-response budget."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self._settings = settings
        self._unpaused = asyncio.Event()
        self.config = self._initial()
        self._unpaused.set()

    def _initial(self) -> ControlConfig:
        return ControlConfig(
            latency_ms=self._settings.latency_ms,
            start_delay_ms=self._settings.start_delay_ms,
            jitter=self._settings.jitter,
            failure_rate=self._settings.failure_rate,
        )

    def reset(self) -> None:
        """Back to the settings' values, unpaused, nothing forced."""
        self.config = self._initial()
        self._unpaused.set()

    def update(self, change: ControlConfigUpdate) -> ControlConfig:
        """Apply a partial update; setting a force without a count forces one request."""
        values = change.model_dump(exclude_unset=True)
        forcing = values.get("force_status") is not None or bool(values.get("force_timeout_ms"))
        if forcing and "force_count" not in values:
            values["force_count"] = max(self.config.force_count, 1)
        merged = self.config.model_dump() | values
        self.config = ControlConfig.model_validate(merged)
        if self.config.paused:
            self._unpaused.clear()
        else:
            self._unpaused.set()
        return self.config

    async def wait_unpaused(self) -> None:
        """Return once predictions may leave ``starting``."""
        await self._unpaused.wait()

    def take_forced_status(self) -> int | None:
        """Consume one forced status for an API request, if any is pending."""
        status = self.config.force_status
        if status is None or self.config.force_count <= 0:
            return None
        remaining = self.config.force_count - 1
        self.config = self.config.model_copy(
            update={"force_count": remaining, "force_status": status if remaining else None}
        )
        return status

    def take_forced_timeout(self) -> float:
        """Consume one forced create delay (seconds), or return 0."""
        delay = self.config.force_timeout_ms
        if delay <= 0 or self.config.force_count <= 0 or self.config.force_status is not None:
            return 0.0
        remaining = self.config.force_count - 1
        self.config = self.config.model_copy(
            update={"force_count": remaining, "force_timeout_ms": delay if remaining else 0.0}
        )
        return delay / 1000.0
