"""Predictions (in memory, and on disk with a data folder) and the lifecycle engine that drives
them.

Each prediction is one lightweight asyncio task: ``starting`` (start delay, pause gate),
``processing`` (progress logs), then ``succeeded`` (images rendered now, in a worker thread),
``failed``, ``canceled`` or ``aborted``. A ``Cancel-After`` deadline is a loop timer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from picture.replicate_simulator import images
from picture.replicate_simulator.catalog import (
    CONTENT_TYPES,
    FAIL_ERROR,
    NSFW_ERROR,
    Markers,
    RenderSpec,
    build_spec,
    parse_markers,
)
from picture.replicate_simulator.errors import ProblemError
from picture.replicate_simulator.files import FileStore
from picture.replicate_simulator.journal import PredictionJournal
from picture.replicate_simulator.models import ALL_WEBHOOK_EVENTS
from picture.replicate_simulator.runtime import RuntimeControl, Stats
from picture.replicate_simulator.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)

TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "canceled", "aborted"})
ALL_STATUSES = ("starting", "processing", "succeeded", "failed", "canceled", "aborted")
PAGE_SIZE = 100
PROGRESS_EVENT_INTERVAL = 0.5
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_PROGRESS_STEPS = 4


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - _now()).total_seconds()))


@dataclass(slots=True, eq=False)
class Prediction:
    """One prediction and its lifecycle state."""

    id: str
    seq: int
    model: str
    version: str
    input: dict[str, Any]
    spec: RenderSpec
    markers: Markers
    fail_error: str | None
    run_seconds: float
    start_delay_seconds: float
    webhook: str | None
    events: frozenset[str]
    stream: bool
    deployment: str | None
    created_at: datetime = field(default_factory=_now)
    status: str = "starting"
    output: Any = None
    logs: str = ""
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    deadline: asyncio.TimerHandle | None = None
    deadline_at: datetime | None = None
    progress_steps: int = 0
    last_progress_event: float = 0.0

    @property
    def terminal(self) -> bool:
        """Whether the prediction reached a final status."""
        return self.status in TERMINAL_STATUSES

    def to_record(self) -> dict[str, Any]:
        """Everything needed to resume this prediction after a restart (the journal's file)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "spec": asdict(self.spec),
            "fail_error": self.fail_error,
            "run_seconds": self.run_seconds,
            "start_delay_seconds": self.start_delay_seconds,
            "webhook": self.webhook,
            "events": sorted(self.events),
            "stream": self.stream,
            "deployment": self.deployment,
            "created_at": _iso(self.created_at),
            "status": self.status,
            "output": self.output,
            "logs": self.logs,
            "error": self.error,
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "deadline_at": _iso(self.deadline_at),
            "progress_steps": self.progress_steps,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        spec = RenderSpec(**record["spec"])
        prediction = cls(
            id=record["id"],
            seq=int(record["seq"]),
            model=record["model"],
            version=record["version"],
            input=record["input"],
            spec=spec,
            markers=parse_markers(spec.prompt),
            fail_error=record["fail_error"],
            run_seconds=float(record["run_seconds"]),
            start_delay_seconds=float(record["start_delay_seconds"]),
            webhook=record["webhook"],
            events=frozenset(record["events"]),
            stream=bool(record["stream"]),
            deployment=record["deployment"],
            created_at=_parse(record["created_at"]) or _now(),
            status=record["status"],
            output=record["output"],
            logs=record["logs"],
            error=record["error"],
            started_at=_parse(record["started_at"]),
            completed_at=_parse(record["completed_at"]),
            deadline_at=_parse(record["deadline_at"]),
            progress_steps=int(record["progress_steps"]),
        )
        if prediction.terminal:
            prediction.done.set()
        return prediction

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The prediction as the Replicate API returns it."""
        get_url = f"{base_url}/v1/predictions/{self.id}"
        urls = {"get": get_url, "cancel": f"{get_url}/cancel", "web": f"{base_url}/p/{self.id}"}
        if self.stream:
            urls["stream"] = f"{get_url}/stream"
        metrics: dict[str, Any] = {}
        if self.completed_at is not None and self.started_at is not None:
            metrics["predict_time"] = (self.completed_at - self.started_at).total_seconds()
        body: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "logs": self.logs,
            "output": self.output,
            "data_removed": False,
            "error": self.error,
            "status": self.status,
            "source": "api",
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "urls": urls,
            "metrics": metrics,
        }
        if self.deployment is not None:
            body["deployment"] = self.deployment
        return body


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the prediction list (newest first) and its neighbour cursors."""

    results: list[Prediction]
    next_cursor: str | None
    previous_cursor: str | None


def _encode_cursor(direction: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{direction}:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, seq = raw.split(":", 1)
        if direction not in {"a", "b"}:
            raise ValueError(direction)
        return direction, int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ProblemError(400, "Invalid cursor") from exc


class PredictionStore:
    """Owns every prediction, its task and deadline; emits webhook events."""

    def __init__(
        self,
        *,
        base_url: str,
        control: RuntimeControl,
        stats: Stats,
        files: FileStore,
        dispatcher: WebhookDispatcher,
        seed: int | None,
        max_predictions: int,
        retention_seconds: float,
        run_timeout_seconds: float,
        journal: PredictionJournal | None = None,
    ) -> None:
        self._journal = journal
        self._base_url = base_url
        self._control = control
        self._stats = stats
        self._files = files
        self._dispatcher = dispatcher
        self._seed = seed
        self._rng = random.Random(seed)
        self._max = max_predictions
        self._retention = retention_seconds
        self._run_timeout = run_timeout_seconds
        self._predictions: OrderedDict[str, Prediction] = OrderedDict()
        self._seq = 0

    def resume(self) -> int:
        """Load the journal (lifespan start): finished predictions are listed again, the
        others continue their timeline from ``created_at``. Returns how many resumed."""
        if self._journal is None:
            return 0
        loop = asyncio.get_running_loop()
        resumed = 0
        for record in self._journal.load():
            prediction = Prediction.from_record(record)
            self._predictions[prediction.id] = prediction
            self._seq = max(self._seq, prediction.seq)
            if prediction.terminal:
                continue
            if prediction.deadline_at is not None:
                delay = max(0.0, (prediction.deadline_at - _now()).total_seconds())
                prediction.deadline = loop.call_later(delay, self._on_deadline, prediction)
            prediction.task = loop.create_task(self._run(prediction), name=f"prediction-{prediction.id}")
            resumed += 1
        return resumed

    # -- queries -------------------------------------------------------------------------

    def get(self, prediction_id: str) -> Prediction:
        """Return a prediction or raise a 404 problem."""
        prediction = self._predictions.get(prediction_id)
        if prediction is None:
            raise ProblemError(404, "The requested resource could not be found.")
        return prediction

    def to_json(self, prediction: Prediction) -> dict[str, Any]:
        """Serialise with this simulator's public base URL, honouring data retention."""
        body = prediction.to_json(self._base_url)
        completed = prediction.completed_at
        if completed is not None and (_now() - completed).total_seconds() >= self._retention:
            body.update(data_removed=True, input={}, output=None, logs="")
        return body

    def page(
        self,
        cursor: str | None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page:
        """Newest-first page of at most 100 predictions, of those created at or after
        ``created_after`` and before ``created_before`` when given."""
        items = [
            p
            for p in self._predictions.values()
            if (created_after is None or p.created_at >= created_after)
            and (created_before is None or p.created_at < created_before)
        ]
        if cursor is None:
            chosen = items[-PAGE_SIZE:]
        else:
            direction, seq = _decode_cursor(cursor)
            if direction == "b":
                chosen = [p for p in items if p.seq < seq][-PAGE_SIZE:]
            else:
                chosen = [p for p in items if p.seq > seq][:PAGE_SIZE]
        chosen.reverse()
        if not chosen:
            return Page([], None, None)
        newest, oldest = chosen[0].seq, chosen[-1].seq
        has_older = bool(items) and items[0].seq < oldest
        has_newer = bool(items) and items[-1].seq > newest
        return Page(
            chosen,
            _encode_cursor("b", oldest) if has_older else None,
            _encode_cursor("a", newest) if has_newer else None,
        )

    def status_counts(self) -> dict[str, int]:
        """Number of predictions per status."""
        counts = dict.fromkeys(ALL_STATUSES, 0)
        for prediction in self._predictions.values():
            counts[prediction.status] = counts.get(prediction.status, 0) + 1
        return counts

    # -- commands ------------------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            candidate = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(26))
            if candidate not in self._predictions:
                return candidate

    def create(
        self,
        *,
        model: str,
        version: str,
        input: dict[str, Any],
        webhook: str | None = None,
        events: frozenset[str] = ALL_WEBHOOK_EVENTS,
        stream: bool = False,
        deployment: str | None = None,
        cancel_after: float | None = None,
    ) -> Prediction:
        """Validate the input, register a prediction in ``starting`` and start it."""
        spec = build_spec(model, input, self._rng)
        markers = parse_markers(spec.prompt)
        config = self._control.config
        fail_roll = self._rng.random()
        fail_error: str | None = None
        if markers.nsfw:
            fail_error = NSFW_ERROR
        elif markers.fail or fail_roll < config.failure_rate:
            fail_error = FAIL_ERROR
        jitter = 1.0 + self._rng.uniform(-config.jitter, config.jitter)
        start_delay = config.start_delay_ms * jitter / 1000.0
        if markers.slow_ms is not None:
            total = markers.slow_ms / 1000.0
        else:
            total = config.latency_ms * jitter / 1000.0
        self._seq += 1
        prediction = Prediction(
            id=self._new_id(),
            seq=self._seq,
            model=model,
            version=version,
            input=input,
            spec=spec,
            markers=markers,
            fail_error=fail_error,
            run_seconds=max(total - start_delay, 0.0),
            start_delay_seconds=start_delay,
            webhook=webhook,
            events=events,
            stream=stream,
            deployment=deployment,
        )
        self._predictions[prediction.id] = prediction
        self._evict()
        loop = asyncio.get_running_loop()
        if cancel_after is not None:
            prediction.deadline_at = prediction.created_at + timedelta(seconds=cancel_after)
            prediction.deadline = loop.call_later(cancel_after, self._on_deadline, prediction)
        prediction.task = loop.create_task(self._run(prediction), name=f"prediction-{prediction.id}")
        self._stats.creates += 1
        self._emit(prediction, "start")
        return prediction

    def cancel(self, prediction: Prediction) -> None:
        """Cancel a running prediction; terminal ones stay unchanged."""
        self._stats.cancels += 1
        self._stop(prediction, "canceled")

    def _on_deadline(self, prediction: Prediction) -> None:
        self._stop(prediction, "aborted" if prediction.status == "starting" else "canceled")

    def _stop(self, prediction: Prediction, status: str) -> None:
        if prediction.terminal:
            return
        task = prediction.task
        self._finish(prediction, status)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _evict(self) -> None:
        if len(self._predictions) <= self._max:
            return
        for prediction_id in [p.id for p in self._predictions.values() if p.terminal]:
            del self._predictions[prediction_id]
            if self._journal is not None:
                self._journal.delete(prediction_id)
            if len(self._predictions) <= self._max:
                return

    async def reset(self) -> None:
        """Cancel everything and forget all predictions (control API)."""
        await self.aclose()
        self._predictions.clear()
        if self._journal is not None:
            self._journal.clear()
        self._rng = random.Random(self._seed)
        self._seq = 0

    async def aclose(self) -> None:
        """Stop all lifecycle tasks and deadlines (lifespan shutdown); the journal keeps the
        predictions for the next start."""
        tasks = [p.task for p in self._predictions.values() if p.task is not None]
        for prediction in self._predictions.values():
            if prediction.deadline is not None:
                prediction.deadline.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- lifecycle -----------------------------------------------------------------------

    async def _run(self, prediction: Prediction) -> None:
        # Absolute times from created_at: a prediction resumed after a restart keeps its timeline.
        try:
            await _sleep_until(prediction.created_at + timedelta(seconds=prediction.start_delay_seconds))
            await self._control.wait_unpaused()
            if prediction.started_at is None:
                prediction.status = "processing"
                prediction.started_at = _now()
                prediction.logs = f"Using seed: {prediction.spec.seed}\n"
                self._emit(prediction, "logs")
            elapsed = (_now() - prediction.started_at).total_seconds()
            async with asyncio.timeout(max(0.0, self._run_timeout - elapsed)):
                await self._process(prediction)
        except TimeoutError:
            self._finish(prediction, "failed", error="Prediction timed out")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("prediction %s crashed", prediction.id)
            self._finish(prediction, "failed", error="Internal simulator error")

    async def _process(self, prediction: Prediction) -> None:
        if prediction.markers.hang:
            await asyncio.Future()
        assert prediction.started_at is not None
        for step in range(prediction.progress_steps + 1, _PROGRESS_STEPS + 1):
            offset = prediction.run_seconds * step / _PROGRESS_STEPS
            await _sleep_until(prediction.started_at + timedelta(seconds=offset))
            percent = step * 100 // _PROGRESS_STEPS
            bar = "#" * (step * 10 // _PROGRESS_STEPS)
            prediction.logs += f"{percent:3d}%|{bar:<10}| {step}/{_PROGRESS_STEPS}\n"
            prediction.progress_steps = step
            self._emit(prediction, "logs")
        if prediction.fail_error is not None:
            self._finish(prediction, "failed", error=prediction.fail_error)
            return
        output = await self._render(prediction.spec)
        if prediction.terminal:
            return
        prediction.output = output
        self._emit(prediction, "output")
        self._finish(prediction, "succeeded")

    async def _render(self, spec: RenderSpec) -> str | list[str]:
        urls: list[str] = []
        ext = spec.fmt
        for index in range(spec.num_outputs):
            data = await asyncio.to_thread(images.render, spec, index)
            path = self._files.put(f"out-{index}.{ext}", CONTENT_TYPES[spec.fmt], data)
            urls.append(self._base_url + path)
        return urls[0] if spec.single_output else urls

    def _finish(self, prediction: Prediction, status: str, error: str | None = None) -> None:
        if prediction.terminal:
            return
        prediction.status = status
        prediction.error = error
        prediction.completed_at = _now()
        if prediction.deadline is not None:
            prediction.deadline.cancel()
            prediction.deadline = None
        prediction.task = None
        prediction.done.set()
        self._emit(prediction, "completed")

    def _emit(self, prediction: Prediction, event: str) -> None:
        """Record a change (journal) and send its webhook event if asked for."""
        if self._journal is not None:
            self._journal.save(prediction.id, prediction.to_record())
        if prediction.webhook is None or event not in prediction.events:
            return
        if event in {"logs", "output"}:
            now = time.monotonic()
            if now - prediction.last_progress_event < PROGRESS_EVENT_INTERVAL:
                return
            prediction.last_progress_event = now
        self._dispatcher.send(prediction.webhook, prediction.id, self.to_json(prediction))
