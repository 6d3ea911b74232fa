"""Completion by polling: one scheduler task per process follows every active prediction.

A heap orders predictions by their next poll time; each poll runs as a short task (the
client's bulkhead bounds them) and reschedules its prediction with a growing interval
(``interval * backoff``, capped). A terminal status is published first, then written to the
row: if the process dies in between, the restart polls again and publishes the same event
(its id is derived from generation and attempt, so it is deduplicated downstream).

On start, every prediction row that has a prediction id and is not terminal is loaded again
(crash recovery).

With webhooks on, :meth:`Poller.complete` finishes a prediction from a verified webhook
(``completed_via`` = webhook) and polling is only the fallback for lost webhooks, at a
slower cadence. The first writer of the terminal row wins; both paths publish the same
event id, so a prediction finished by both is reported once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.contracts import PREDICTION_UPDATED, PredictionStatus
from picture.common.messaging import Bus
from picture.common.observability import carrier_exemplar
from picture.common.telemetry import capture_trace_context, trace_context_from
from picture.replicate_adapter import store
from picture.replicate_adapter.errors import PermanentReplicateError, TransientReplicateError
from picture.replicate_adapter.metrics import COMPLETIONS, COST, IN_FLIGHT, OUTCOMES, PREDICTION_SECONDS
from picture.replicate_adapter.outcomes import LOST, error_code, terminal_event, terminal_id
from picture.replicate_adapter.replicate import Prediction, ReplicateClient

log = logging.getLogger(__name__)

Key = tuple[uuid.UUID, int]


@dataclass
class Tracked:
    generation_id: uuid.UUID
    attempt: int
    prediction_id: str
    model: str
    cost_usd: float
    status: str
    interval: float
    seq: int = 0
    # W3C context of the predict command: polls and the terminal event stay in its trace.
    trace_carrier: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.generation_id, self.attempt)


class Poller:
    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        client: ReplicateClient,
        *,
        interval: float = 0.5,
        max_interval: float = 5.0,
        backoff: float = 1.5,
        max_polls_per_second: float | None = None,
    ) -> None:
        self.engine = engine
        # Polls started per second at most (None: unbounded): with thousands in flight the
        # fallback polling spreads out instead of taking the process's CPU from new work.
        self.max_polls_per_second = max_polls_per_second
        self._next_slot = 0.0
        self.bus = bus
        self.client = client
        self.interval = interval
        self.max_interval = max_interval
        self.backoff = backoff
        self._tracked: dict[Key, Tracked] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Resume every active prediction, then run the scheduler."""
        rows = await store.active(self.engine)
        for row in rows:
            assert row.prediction_id is not None
            self.track(
                row.generation_id,
                row.attempt,
                row.prediction_id,
                row.model,
                row.cost_usd,
                row.status,
                delay=0.0,
                trace_carrier=row.trace_context or {},
            )
        if rows:
            log.info("resumed polling %d prediction(s)", len(rows))
        self._task = asyncio.create_task(self._run(), name="replicate-poller")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._polls) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tracked.clear()
        IN_FLIGHT.set(0)

    @property
    def tracked(self) -> int:
        return len(self._tracked)

    def is_tracked(self, generation_id: uuid.UUID, attempt: int) -> bool:
        return (generation_id, attempt) in self._tracked

    # ------------------------------------------------------------------ scheduling

    def track(
        self,
        generation_id: uuid.UUID,
        attempt: int,
        prediction_id: str,
        model: str,
        cost_usd: float,
        status: str = "starting",
        *,
        delay: float | None = None,
        trace_carrier: dict[str, str] | None = None,
    ) -> None:
        """Follow a prediction until it is terminal (no-op when already followed). Polls and the
        terminal event run in ``trace_carrier``'s trace (default: the caller's)."""
        key = (generation_id, attempt)
        if key in self._tracked:
            return
        entry = Tracked(
            generation_id, attempt, prediction_id, model, cost_usd, status, interval=self.interval
        )
        entry.trace_carrier = capture_trace_context() if trace_carrier is None else trace_carrier
        self._tracked[key] = entry
        IN_FLIGHT.set(len(self._tracked))
        self._schedule(entry, self.interval if delay is None else delay)

    def poll_soon(self, generation_id: uuid.UUID, attempt: int) -> None:
        """Poll now (e.g. after a cancel request)."""
        entry = self._tracked.get((generation_id, attempt))
        if entry is not None:
            self._schedule(entry, 0.0)

    def _schedule(self, entry: Tracked, delay: float) -> None:
        entry.seq = next(self._seq)
        heapq.heappush(self._heap, (time.monotonic() + delay, entry.seq, entry.key))
        self._wake.set()

    def _next_delay(self, entry: Tracked) -> float:
        delay = entry.interval
        entry.interval = min(entry.interval * self.backoff, self.max_interval)
        return delay

    def _untrack(self, entry: Tracked) -> None:
        self._tracked.pop(entry.key, None)
        IN_FLIGHT.set(len(self._tracked))

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            rate = self.max_polls_per_second
            while self._heap and self._heap[0][0] <= now:
                if rate and self._next_slot > now:
                    break  # over the poll rate: the overdue ones wait for the next slot
                _, seq, key = heapq.heappop(self._heap)
                entry = self._tracked.get(key)
                if entry is None or entry.seq != seq:
                    continue  # finished, or rescheduled since
                task = asyncio.create_task(self._poll(entry), context=trace_context_from(entry.trace_carrier))
                self._polls.add(task)
                task.add_done_callback(self._polls.discard)
                if rate:
                    self._next_slot = max(self._next_slot, now) + 1.0 / rate
            timeout = self._heap[0][0] - now if self._heap else None
            if timeout is not None and timeout <= 0:
                timeout = max(0.0, self._next_slot - now)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    # ------------------------------------------------------------------ one poll

    async def _poll(self, entry: Tracked) -> None:
        try:
            prediction = await self.client.get_prediction(entry.prediction_id, model=entry.model)
        except TransientReplicateError as exc:
            delay = max(self._next_delay(entry), exc.retry_after or 0.0)
            log.info("poll of %s failed, again in %.1fs: %s", entry.prediction_id, delay, exc)
            self._schedule(entry, delay)
            return
        except PermanentReplicateError as exc:
            if exc.status == 404:
                # Gone at Replicate (or never there): report it; a new attempt can help.
                prediction = Prediction(id=entry.prediction_id, status=LOST, error=exc.message)
            else:
                log.error("poll of %s refused: %s", entry.prediction_id, exc)
                entry.interval = self.max_interval
                self._schedule(entry, self.max_interval)
                return
        except Exception:
            log.exception("poll of %s failed", entry.prediction_id)
            self._schedule(entry, self._next_delay(entry))
            return
        try:
            if entry.key not in self._tracked:
                return  # finished meanwhile (a webhook)
            if prediction.is_terminal:
                await self._finish(entry, prediction, "poll")
                self._untrack(entry)
                return
            if prediction.status != entry.status:
                entry.status = prediction.status
                await store.set_status(self.engine, entry.generation_id, entry.attempt, prediction.status)
        except Exception:
            log.exception("recording prediction %s failed", entry.prediction_id)
        self._schedule(entry, self._next_delay(entry))

    async def complete(self, row: store.PredictionRow, prediction: Prediction, source: str) -> None:
        """Finish ``row``'s prediction from a status learned elsewhere (a webhook)."""
        key = (row.generation_id, row.attempt)
        entry = self._tracked.get(key) or Tracked(
            row.generation_id,
            row.attempt,
            prediction.id,
            row.model,
            row.cost_usd,
            row.status,
            interval=self.interval,
            trace_carrier=row.trace_context or {},
        )
        # Publish in the predict command's trace (kept with the row), not the webhook's.
        await asyncio.create_task(
            self._finish(entry, prediction, source), context=trace_context_from(entry.trace_carrier)
        )
        if self._tracked.get(key) is entry:
            self._untrack(entry)

    async def update(self, row: store.PredictionRow, status: str) -> None:
        """A non-terminal status learned elsewhere (a webhook's "start")."""
        entry = self._tracked.get((row.generation_id, row.attempt))
        if entry is not None and entry.status != status:
            entry.status = status
        if row.status != status:
            await store.set_status(self.engine, row.generation_id, row.attempt, status)

    async def _finish(self, entry: Tracked, prediction: Prediction, source: str) -> None:
        event = terminal_event(
            generation_id=entry.generation_id,
            attempt=entry.attempt,
            prediction_id=prediction.id,
            status=prediction.status,
            output=prediction.output,
            error=prediction.error,
            predict_time_seconds=prediction.predict_time,
            cost_usd=entry.cost_usd,
        )
        await self.bus.publish(
            PREDICTION_UPDATED,
            event,
            message_id=terminal_id(entry.generation_id, entry.attempt),
            generation_id=entry.generation_id,
        )
        first = await store.finish(
            self.engine,
            entry.generation_id,
            entry.attempt,
            status=prediction.status,
            output=prediction.output,
            error=prediction.error,
            error_code=error_code(event),
            predict_time_seconds=prediction.predict_time,
            completed_via=source,
        )
        if first:
            COMPLETIONS.labels(source).inc()
            OUTCOMES.labels(entry.model, event.status.value).inc()
            if (seconds := prediction.run_seconds) is not None:
                PREDICTION_SECONDS.labels(entry.model).observe(seconds, carrier_exemplar(entry.trace_carrier))
            if event.status is PredictionStatus.SUCCEEDED:
                COST.labels(entry.model).inc(entry.cost_usd)
        log.info(
            "prediction %s of generation %s/%d: %s (%s)",
            prediction.id,
            entry.generation_id,
            entry.attempt,
            prediction.status,
            source,
        )
