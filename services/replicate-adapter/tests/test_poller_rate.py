"""The poller's rate cap: with many predictions due at once, polls start no faster than
``max_polls_per_second``, and every prediction is still polled."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, cast

from picture.replicate_adapter.poller import Poller
from picture.replicate_adapter.replicate import Prediction


class CountingClient:
    def __init__(self) -> None:
        self.polled: list[tuple[float, str]] = []

    async def get_prediction(self, prediction_id: str, *, model: str = "unknown") -> Prediction:
        self.polled.append((time.monotonic(), prediction_id))
        return Prediction(id=prediction_id, status="starting")


async def test_polls_are_spread_to_the_rate_cap() -> None:
    client = CountingClient()
    poller = Poller(
        cast(Any, None),  # no status change, no terminal status: no database, no bus
        cast(Any, None),
        cast(Any, client),
        interval=60.0,
        max_interval=60.0,
        max_polls_per_second=40.0,
    )
    poller._task = asyncio.create_task(poller._run())
    try:
        started = time.monotonic()
        for i in range(30):
            poller.track(uuid.uuid4(), 1, f"p{i}", "flux-schnell", 0.0, delay=0.0)
        deadline = started + 5
        while len({pid for _, pid in client.polled}) < 30:
            assert time.monotonic() < deadline, f"only {len(client.polled)} polls"
            await asyncio.sleep(0.01)
    finally:
        await poller.stop()
    times = sorted(t for t, _ in client.polled)
    assert len(times) == 30  # each once (the next poll is 60 s away)
    # 30 polls at 40/s cannot take less than 29/40 s; unbounded they all start at once.
    assert times[-1] - times[0] >= 29 / 40 * 0.95


async def test_unbounded_without_a_cap() -> None:
    client = CountingClient()
    poller = Poller(cast(Any, None), cast(Any, None), cast(Any, client), interval=60.0, max_interval=60.0)
    poller._task = asyncio.create_task(poller._run())
    try:
        for i in range(30):
            poller.track(uuid.uuid4(), 1, f"p{i}", "flux-schnell", 0.0, delay=0.0)
        deadline = time.monotonic() + 5
        while len(client.polled) < 30:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    finally:
        await poller.stop()
    times = sorted(t for t, _ in client.polled)
    assert times[-1] - times[0] < 29 / 40 * 0.95
