"""The generation state machine: the transition table, and which event moves a generation
where. Pure: no I/O, the time and the settings come in as arguments.

    pending -> queued -> processing -> downloading -> completed
    queued | processing | downloading -> failed | cancelled
    queued | processing | downloading -> queued           (the prediction again, after a back-off)
    downloading -> downloading                            (the download again, after a back-off)

``pending`` exists only inside the transaction that accepts a generation. Terminal states never
change. :func:`decide` answers an event with a :data:`Decision`; the handlers load the
generation, decide, persist the decision and publish what follows, so every rule about what an
event does lives here and is tested without a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from picture.common import contracts as c
from picture.common.contracts import ErrorInfo, ErrorKind
from picture.common.contracts import GenerationStatus as S
from picture.common.ids import derived_id
from picture.orchestrator.settings import OrchestratorSettings

TRANSITIONS: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.QUEUED}),
    # queued -> queued: the prediction failed before its start was seen; it waits again
    S.QUEUED: frozenset({S.QUEUED, S.PROCESSING, S.FAILED, S.CANCELLED}),
    S.PROCESSING: frozenset({S.QUEUED, S.DOWNLOADING, S.FAILED, S.CANCELLED}),
    # downloading -> queued: the prediction reported failed after its success was taken in
    # downloading -> downloading: the download failed and is tried again
    S.DOWNLOADING: frozenset({S.QUEUED, S.DOWNLOADING, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL: frozenset[S] = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
ACTIVE: frozenset[S] = frozenset(TRANSITIONS) - TERMINAL

CANCELLED_MESSAGE = "Cancelled by user"


class InvalidTransition(Exception):
    def __init__(self, current: S, target: S) -> None:
        super().__init__(f"cannot move a generation from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: S, target: S) -> bool:
    return target in TRANSITIONS[current]


def transition(current: S, target: S) -> S:
    """Return ``target`` if the move is allowed, else raise :class:`InvalidTransition`."""
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    return target


def legacy_status(status: S) -> str:
    """The status in the compatible view for clients that know no "cancelled": a cancel reads
    as failed (its message says "Cancelled by user")."""
    return S.FAILED.value if status is S.CANCELLED else status.value


# ------------------------------------------------------------------------------ what is decided on


@dataclass(frozen=True)
class Generation:
    """What a decision needs to know about a generation (the values of its row)."""

    id: uuid.UUID
    status: S
    created_at: datetime
    attempt: int = 1
    retry_count: int = 0
    started_at: datetime | None = None
    dispatched: bool = False  # granted a slot: a prediction may run at Replicate
    prediction_id: str | None = None
    image_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Cancel:
    """The user cancels the generation."""


@dataclass(frozen=True)
class StartDeadline:
    """The sweeper found the generation not started within the start deadline."""


@dataclass(frozen=True)
class TotalTimeout:
    """The sweeper found the generation not finished within the total timeout."""


@dataclass(frozen=True)
class Poisoned:
    """An event about the generation failed on every delivery."""

    message_type: str
    reason: str  # the exception's type
    detail: str


Event = (
    c.PredictionEvent
    | c.MediaStoredEvent
    | c.MediaFailedEvent
    | c.ImageCreatedEvent
    | Cancel
    | StartDeadline
    | TotalTimeout
    | Poisoned
)


# ------------------------------------------------------------------------------ decisions


class Stage(StrEnum):
    """What a retry does again."""

    PREDICT = "predict"
    INGEST = "ingest"


@dataclass(frozen=True)
class Move:
    """One status change: the generation's new column values and its history entry.
    ``source`` None: the generation is new."""

    source: S | None
    target: S
    reason: str
    changes: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source is not None:
            transition(self.source, self.target)


@dataclass(frozen=True)
class Ignore:
    """Nothing to do: an older attempt's event, a redelivery, or a generation already past it."""

    why: str


@dataclass(frozen=True)
class Advance:
    """On along the way to completed."""

    moves: tuple[Move, ...]


@dataclass(frozen=True)
class Retry:
    """A transient failure with retries left: a new attempt after ``delay_seconds``."""

    moves: tuple[Move, ...]
    stage: Stage
    error: ErrorInfo
    delay_seconds: float
    not_before: datetime


@dataclass(frozen=True)
class End:
    """The generation ends failed or cancelled. ``error`` is recorded as the cause when set;
    ``cancel_prediction``: a prediction may still run at Replicate and must be stopped."""

    moves: tuple[Move, ...]
    error: ErrorInfo | None = None
    cancel_prediction: bool = False


@dataclass(frozen=True)
class RecordImage:
    """The media is stored: hand the image to the catalog (completed once it has it)."""

    image_id: uuid.UUID
    objects: tuple[c.StoredObject, ...]


@dataclass(frozen=True)
class DiscardObjects:
    """The media was stored after the generation ended: nobody will show these objects."""

    keys: tuple[str, ...]


Decision = Ignore | Advance | Retry | End | RecordImage | DiscardObjects


def accepted(reused_from: uuid.UUID | None = None) -> tuple[Move, ...]:
    """The moves of a generation being accepted: queued for the scheduler, or completed at once
    with the image of an identical earlier generation ``reused_from``."""
    moves = [
        Move(None, S.PENDING, "accepted"),
        Move(S.PENDING, S.QUEUED, "queued for prediction"),
    ]
    if reused_from is not None:
        reason = f"reused the image of identical generation {reused_from}"
        moves += [
            Move(S.QUEUED, S.PROCESSING, reason),
            Move(S.PROCESSING, S.DOWNLOADING, reason),
            Move(S.DOWNLOADING, S.COMPLETED, reason),
        ]
    return tuple(moves)


def decide(
    generation: Generation | None, event: Event, now: datetime, settings: OrchestratorSettings
) -> Decision:
    """What ``event`` does to ``generation`` (None: no such generation) at ``now``."""
    if generation is None:
        return Ignore("no such generation")
    if generation.status is S.PENDING:  # only inside the accepting transaction: never seen here
        return Ignore("not accepted yet")
    match event:
        case c.PredictionEvent():
            return _prediction(generation, event, now, settings)
        case c.MediaStoredEvent():
            return _media_stored(generation, event)
        case c.MediaFailedEvent():
            if reason := _stale(generation, event.attempt) or _not_downloading(generation):
                return Ignore(reason)
            return _fail_or_retry(generation, (), event.error, Stage.INGEST, now, settings)
        case c.ImageCreatedEvent():
            if generation.image_id != event.image_id:
                return Ignore("not the generation's image")
            if reason := _not_downloading(generation):
                return Ignore(reason)
            return Advance((Move(S.DOWNLOADING, S.COMPLETED, "image stored", {"completed_at": now}),))
        case Cancel():
            return _end(generation, S.CANCELLED, "cancelled", CANCELLED_MESSAGE, now)
        case StartDeadline():
            if generation.started_at is not None:
                return Ignore("started in time")
            seconds = settings.start_deadline_seconds
            message = f"The generation did not start within {seconds:g} seconds"
            return _end(generation, S.FAILED, "start_deadline", message, now)
        case TotalTimeout():
            timeout = _timeout_error(settings)
            return _end(generation, S.FAILED, timeout.code, timeout.message, now)
        case Poisoned():
            logged = ErrorInfo(
                kind=ErrorKind.PERMANENT,
                code="poison_message",
                message=f"{event.message_type} could not be processed",
                details={"reason": event.reason, "detail": event.detail[:500]},
            )
            message = "The generation could not be processed; please try again"
            return _end(generation, S.FAILED, "poison_message", message, now, logged)


def _stale(generation: Generation, attempt: int) -> str | None:
    if generation.attempt != attempt:
        return "an older attempt's event"
    if generation.status.is_terminal:
        return f"already {generation.status}"
    return None


def _not_downloading(generation: Generation) -> str | None:
    return None if generation.status is S.DOWNLOADING else f"{generation.status}, not downloading"


def _timeout_error(settings: OrchestratorSettings) -> ErrorInfo:
    seconds = settings.total_timeout_seconds
    return ErrorInfo(
        kind=ErrorKind.PERMANENT,
        code="timeout",
        message=f"The generation did not finish within {seconds:g} seconds",
    )


def _prediction(
    generation: Generation, event: c.PredictionEvent, now: datetime, settings: OrchestratorSettings
) -> Decision:
    if reason := _stale(generation, event.attempt):
        return Ignore(reason)
    status = generation.status
    if event.status is c.PredictionStatus.STARTED:
        if status is not S.QUEUED:
            return Ignore(f"already {status}")
        return Advance((_started(generation, event, now),))
    if event.status is c.PredictionStatus.SUCCEEDED:
        if status not in (S.QUEUED, S.PROCESSING):
            return Ignore(f"already {status}")
        moves: tuple[Move, ...] = ()
        if status is S.QUEUED:  # "started" not seen (lost or late)
            start = _started(generation, event, now)
            moves = (start,)
            generation = replace(generation, status=S.PROCESSING, prediction_id=event.prediction_id)
        if not event.output_urls:
            empty = ErrorInfo(
                kind=ErrorKind.TRANSIENT, code="empty_output", message="The model returned no image"
            )
            return _fail_or_retry(generation, moves, empty, Stage.PREDICT, now, settings)
        succeeded = Move(
            S.PROCESSING,
            S.DOWNLOADING,
            "prediction succeeded",
            {
                "output_urls": list(event.output_urls),
                "cost_usd": event.cost_usd,
                "predict_time_seconds": event.predict_time_seconds,
                "prediction_id": event.prediction_id or generation.prediction_id,
            },
        )
        return Advance((*moves, succeeded))
    canceled = event.status is c.PredictionStatus.CANCELED
    error = event.error or ErrorInfo(
        kind=ErrorKind.PERMANENT,
        code="prediction_canceled" if canceled else "prediction_failed",
        message="The prediction was canceled" if canceled else "The model failed without an error message",
    )
    # The adapter enforces the command's deadline (created_at + total timeout) with a
    # whole-second Cancel-After, so its cancel may come up to a second early.
    expired = canceled or error.code == "prediction_aborted"
    deadline = generation.created_at + timedelta(seconds=settings.total_timeout_seconds - 1.5)
    if expired and now >= deadline:
        error = _timeout_error(settings)
    return _fail_or_retry(generation, (), error, Stage.PREDICT, now, settings)


def _started(generation: Generation, event: c.PredictionEvent, now: datetime) -> Move:
    changes = {"started_at": generation.started_at or now, "prediction_id": event.prediction_id}
    return Move(S.QUEUED, S.PROCESSING, "prediction started", changes)


def _media_stored(generation: Generation, event: c.MediaStoredEvent) -> Decision:
    if (
        generation.attempt == event.attempt
        and generation.status in (S.CANCELLED, S.FAILED)
        and generation.image_id is None
    ):
        return DiscardObjects(tuple(o.key for o in event.objects))
    if reason := _stale(generation, event.attempt) or _not_downloading(generation):
        return Ignore(reason)
    if generation.image_id is not None:
        return Ignore("already handed to the catalog")
    return RecordImage(derived_id("image", generation.id), event.objects)


def _fail_or_retry(
    generation: Generation,
    moves: tuple[Move, ...],
    error: ErrorInfo,
    stage: Stage,
    now: datetime,
    settings: OrchestratorSettings,
) -> Retry | End:
    """Retry a transient error while retries remain, else fail. A prediction goes back to the
    scheduler (its slot is freed during the back-off); a download is tried again with the
    prediction's output, which is still there (not paid for twice)."""
    count = generation.retry_count
    if error.kind is not ErrorKind.TRANSIENT or count >= settings.max_retries:
        failed = Move(
            generation.status,
            S.FAILED,
            error.message,
            {"error_code": error.code, "error_message": error.message, "completed_at": now},
        )
        return End((*moves, failed), error)
    delays = settings.retry_delays_seconds or (0.0,)
    delay = delays[min(count, len(delays) - 1)]
    not_before = now + timedelta(seconds=delay)
    reason = f"retry {count + 1} of {settings.max_retries} in {delay:g}s: {error.message}"
    changes: dict[str, object] = {"attempt": generation.attempt + 1, "retry_count": count + 1}
    if stage is Stage.PREDICT:
        changes.update(prediction_id=None, dispatched_at=None, available_at=not_before)
        retry = Move(generation.status, S.QUEUED, reason, changes)
    else:
        retry = Move(generation.status, S.DOWNLOADING, reason, changes)
    return Retry((*moves, retry), stage, error, delay, not_before)


def _end(
    generation: Generation,
    target: S,
    code: str,
    message: str,
    now: datetime,
    logged: ErrorInfo | None = None,
) -> Decision:
    """Cancel or fail a generation that is not over yet; a prediction granted a slot and not
    finished (not downloading) is stopped at Replicate too."""
    if generation.status.is_terminal:
        return Ignore(f"already {generation.status}")
    ended = Move(
        generation.status,
        target,
        message,
        {"error_code": code, "error_message": message, "completed_at": now},
    )
    return End((ended,), logged, generation.dispatched and generation.status is not S.DOWNLOADING)
