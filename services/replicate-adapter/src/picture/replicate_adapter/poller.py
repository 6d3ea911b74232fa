"""Completion by polling: one scheduler task per process follows every active prediction.

A heap orders predictions by their next poll time; each poll runs as a short task (the
client's bulkhead bounds them) and reschedules its prediction with a growing interval
(``interval * backoff``, capped). A terminal status is published first, then written to the
row: if the process dies in between, the restart polls again and publishes the same event
(its id is derived from generation and attempt, so it is deduplicated downstream).

Ownership (several replicas): each followed prediction has one owner, the replica that polls
it, holding a lease (``owner``, ``owned_until`` in its row). A heartbeat every
``heartbeat_seconds`` renews the leases this replica holds and takes over (a bounded batch)
those whose lease expired: a dead replica's predictions are polled again within
``lease_seconds`` plus one heartbeat. A replica polls only while its own view of its lease
holds (measured from before its last renewal, so it ends no later than the row's): once
another replica may have taken a prediction over, this one has stopped polling it. A renewal
that no longer returns a prediction (taken over meanwhile) drops it here. A graceful stop gives
its leases up, for the others to take at once. Without ``lease_seconds`` (one process, unit
tests) every active row is loaded at start and followed, as before leases existed.

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
import math
import os
import socket
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
from picture.replicate_adapter.metrics import (
    COMPLETIONS,
    COST,
    IN_FLIGHT,
    OUTCOMES,
    PREDICTION_SECONDS,
    TAKEOVERS,
)
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
        owner: str | None = None,
        lease_seconds: float | None = None,
        heartbeat_seconds: float | None = None,
        takeover_batch: int = 200,
    ) -> None:
        self.engine = engine
        # This process's identity in the rows it polls (unique per process: a restarted
        # replica takes its old rows over like any other, once their leases end).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds or (lease_seconds / 3 if lease_seconds else None)
        self.takeover_batch = takeover_batch
        # Until when (monotonic) this replica may poll what it owns; unbounded without leases.
        self._lease_deadline = math.inf if lease_seconds is None else 0.0
        self._heartbeat: asyncio.Task[None] | None = None
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
        """Resume the active predictions (without leases: all of them; with leases: those
        whose lease ended, by the first heartbeat), then run the scheduler."""
        if self.lease_seconds is None:
            rows = await store.active(self.engine)
            self._follow_rows(rows)
            if rows:
                log.info("resumed polling %d prediction(s)", len(rows))
        else:
            await self.beat()
            self._heartbeat = asyncio.create_task(self._beat_forever(), name="replicate-poller-heartbeat")
        self._task = asyncio.create_task(self._run(), name="replicate-poller")

    async def stop(self) -> None:
        tasks = [t for t in (self._heartbeat, self._task, *self._polls) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tracked.clear()
        IN_FLIGHT.set(0)
        if self.lease_seconds is not None:
            self._lease_deadline = 0.0
            try:
                released = await store.disown(self.engine, self.owner)
            except Exception as exc:  # their leases end on their own
                log.warning("giving up the poll leases failed: %s", exc)
            else:
                if released:
                    log.info("gave up %d prediction(s) for the other replicas", released)

    def _follow_rows(self, rows: list[store.PredictionRow]) -> None:
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

    # ------------------------------------------------------------------ ownership

    @property
    def owns_leases(self) -> bool:
        """Whether this replica's leases hold now (it may poll)."""
        return time.monotonic() < self._lease_deadline

    async def beat(self) -> None:
        """One heartbeat: renew this replica's leases, drop what another replica took over,
        take over (a batch of) what nobody holds."""
        assert self.lease_seconds is not None
        started = time.monotonic()
        kept = await store.renew(self.engine, self.owner, self.lease_seconds)
        # A margin below the row's end: a poll started just before it still ends before
        # another replica may start one.
        self._lease_deadline = started + self.lease_seconds * 0.8
        for key in [key for key in self._tracked if key not in kept]:
            log.warning("prediction of %s/%d is polled by another replica now", *key)
            self._untrack(self._tracked[key])
        rows = await store.take_over(self.engine, self.owner, self.lease_seconds, self.takeover_batch)
        if rows:
            TAKEOVERS.inc(len(rows))
            log.info("took over polling of %d prediction(s)", len(rows))
            self._follow_rows(rows)
        self._wake.set()

    async def _beat_forever(self) -> None:
        assert self.heartbeat_seconds is not None
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # polling pauses when the leases run out
                log.warning("poll lease heartbeat failed: %s", exc)

    async def follow(self, row: store.PredictionRow) -> bool:
        """Poll ``row``'s prediction here if no other replica holds it (with leases, take it);
        True when this replica follows it."""
        if self.lease_seconds is not None:
            owned = await store.own(
                self.engine, row.generation_id, row.attempt, self.owner, self.lease_seconds
            )
            if owned is None:
                return False
            row = owned
        assert row.prediction_id is not None
        self.track(
            row.generation_id,
            row.attempt,
            row.prediction_id,
            row.model,
            row.cost_usd,
            row.status,
            trace_carrier=row.trace_context,
        )
        return True

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
            if not self.owns_leases:
                # Our leases may have ended: another replica may poll these now. Wait for
                # the heartbeat (it wakes us) before polling again.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.heartbeat_seconds or 1.0)
                continue
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
            if self._lease_deadline != math.inf:
                timeout = min(timeout if timeout is not None else math.inf, self._lease_deadline - now)
                timeout = max(0.0, timeout)
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
