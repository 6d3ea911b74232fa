"""The state machine: the transition table (every pair: allowed ones pass, every other is
refused) and the decisions (every status against every event, then each rule in detail)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from picture.common import contracts as c
from picture.common.contracts import TERMINAL_STATUSES, ErrorInfo, ErrorKind
from picture.common.contracts import GenerationStatus as S
from picture.common.ids import derived_id
from picture.orchestrator.settings import OrchestratorSettings
from picture.orchestrator.state_machine import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    Advance,
    Cancel,
    Decision,
    DiscardObjects,
    End,
    Event,
    Generation,
    Ignore,
    InvalidTransition,
    Move,
    Poisoned,
    RecordImage,
    Retry,
    Stage,
    StartDeadline,
    TotalTimeout,
    accepted,
    can_transition,
    decide,
    legacy_status,
    transition,
)

ALLOWED = {
    (S.PENDING, S.QUEUED),
    (S.QUEUED, S.QUEUED),
    (S.QUEUED, S.PROCESSING),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELLED),
    (S.PROCESSING, S.DOWNLOADING),
    (S.PROCESSING, S.QUEUED),
    (S.PROCESSING, S.FAILED),
    (S.PROCESSING, S.CANCELLED),
    (S.DOWNLOADING, S.COMPLETED),
    (S.DOWNLOADING, S.QUEUED),
    (S.DOWNLOADING, S.DOWNLOADING),
    (S.DOWNLOADING, S.FAILED),
    (S.DOWNLOADING, S.CANCELLED),
}
ALL_PAIRS = list(itertools.product(S, S))


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions(current: S, target: S) -> None:
    assert can_transition(current, target)
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_refused_transitions(current: S, target: S) -> None:
    assert not can_transition(current, target)
    with pytest.raises(InvalidTransition) as raised:
        transition(current, target)
    assert (raised.value.current, raised.value.target) == (current, target)


@pytest.mark.parametrize("terminal", [S.COMPLETED, S.FAILED, S.CANCELLED])
def test_terminal_states_never_change(terminal: S) -> None:
    assert terminal.is_terminal
    assert not any(can_transition(terminal, target) for target in S)


@pytest.mark.parametrize(
    ("status", "legacy"),
    [(S.CANCELLED, "failed"), (S.COMPLETED, "completed"), (S.QUEUED, "queued"), (S.FAILED, "failed")],
)
def test_legacy_view_maps_cancelled_to_failed(status: S, legacy: str) -> None:
    assert legacy_status(status) == legacy


def test_terminal_and_active_come_from_the_table_and_agree_with_the_contract() -> None:
    assert TERMINAL == TERMINAL_STATUSES == {S.COMPLETED, S.FAILED, S.CANCELLED}
    assert {S.PENDING, S.QUEUED, S.PROCESSING, S.DOWNLOADING} == ACTIVE


def test_a_move_outside_the_table_cannot_be_made() -> None:
    with pytest.raises(InvalidTransition):
        Move(S.COMPLETED, S.QUEUED, "no")


# ------------------------------------------------------------------------------ decisions

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREATED = NOW - timedelta(seconds=60)
STARTED = NOW - timedelta(seconds=30)
SETTINGS = OrchestratorSettings(
    max_retries=3,
    retry_delays_seconds=(5.0, 10.0, 30.0),
    start_deadline_seconds=900.0,
    total_timeout_seconds=1800.0,
)
GID = uuid.UUID("0190d1e4-0000-7000-8000-000000000001")
IMAGE = derived_id("image", GID)
TRANSIENT = ErrorInfo(
    kind=ErrorKind.TRANSIENT, code="replicate_unavailable", message="Replicate is unavailable"
)
PERMANENT = ErrorInfo(kind=ErrorKind.PERMANENT, code="nsfw", message="The model refused the prompt")
OUTPUT = ("https://replicate.delivery/out-0.png",)
OBJECTS = (
    c.StoredObject(
        key="u/g/original.png",
        role="original",
        content_type="image/png",
        size=10,
        width=8,
        height=8,
        sha256="0",
    ),
)
ATTEMPT = 2  # the generation's current attempt; 1 is an older one


def generation(status: S, **changes: object) -> Generation:
    """A generation in ``status`` on its second attempt, one retry used, granted a slot."""
    started = status in (S.PROCESSING, S.DOWNLOADING, S.COMPLETED)
    base = Generation(
        id=GID,
        status=status,
        created_at=CREATED,
        attempt=ATTEMPT,
        retry_count=1,
        started_at=STARTED if started else None,
        dispatched=status is not S.PENDING,
        prediction_id="p-1" if started else None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def prediction(status: c.PredictionStatus, attempt: int = ATTEMPT, **fields: object) -> c.PredictionEvent:
    return c.PredictionEvent.model_validate(
        {"generation_id": GID, "attempt": attempt, "prediction_id": "p-2", "status": status, **fields}
    )


def media_stored(attempt: int = ATTEMPT) -> c.MediaStoredEvent:
    return c.MediaStoredEvent(generation_id=GID, attempt=attempt, objects=OBJECTS)


def media_failed(error: ErrorInfo = TRANSIENT, attempt: int = ATTEMPT) -> c.MediaFailedEvent:
    return c.MediaFailedEvent(generation_id=GID, attempt=attempt, error=error)


P = c.PredictionStatus
EVENTS: dict[str, Event] = {
    "started": prediction(P.STARTED),
    "succeeded": prediction(P.SUCCEEDED, output_urls=OUTPUT, cost_usd=0.003, predict_time_seconds=1.5),
    "no output": prediction(P.SUCCEEDED),
    "transient": prediction(P.FAILED, error=TRANSIENT),
    "permanent": prediction(P.FAILED, error=PERMANENT),
    "canceled": prediction(P.CANCELED),
    "stored": media_stored(),
    "store failed": media_failed(),
    "image": c.ImageCreatedEvent(image_id=IMAGE, generation_id=GID, user_id=uuid.uuid4()),
    "cancel": Cancel(),
    "deadline": StartDeadline(),
    "timeout": TotalTimeout(),
    "poisoned": Poisoned("prediction.updated", "ValueError", "bad payload"),
}
# the catalog announces the image media stored: the generation holds its id by then
BEFORE = {"image": {"image_id": IMAGE}}

# What each event does in each status, read "kind:targets" ("-": ignored).
_ = "-"
OUTCOMES: dict[S, tuple[str, ...]] = {
    #   started, succeeded, no output, transient, permanent, canceled,
    #   stored, store failed, image, cancel, deadline, timeout, poisoned
    S.PENDING: (_, _, _, _, _, _, _, _, _, _, _, _, _),
    S.QUEUED: (
        "advance:processing", "advance:processing>downloading", "retry:processing>queued",
        "retry:queued", "end:failed", "end:failed",
        _, _, _, "end:cancelled", "end:failed", "end:failed", "end:failed",
    ),
    S.PROCESSING: (
        _, "advance:downloading", "retry:queued", "retry:queued", "end:failed", "end:failed",
        _, _, _, "end:cancelled", _, "end:failed", "end:failed",
    ),
    S.DOWNLOADING: (
        _, _, _, "retry:queued", "end:failed", "end:failed",
        "record", "retry:downloading", "advance:completed", "end:cancelled", _, "end:failed", "end:failed",
    ),
    S.COMPLETED: (_, _, _, _, _, _, _, _, _, _, _, _, _),
    S.FAILED: (_, _, _, _, _, _, "discard", _, _, _, _, _, _),
    S.CANCELLED: (_, _, _, _, _, _, "discard", _, _, _, _, _, _),
}  # fmt: skip
GRID = [
    (status, name, expected)
    for status, row in OUTCOMES.items()
    for name, expected in zip(EVENTS, row, strict=True)
]


def outcome(decision: Decision) -> str:
    match decision:
        case Ignore():
            return _
        case DiscardObjects():
            return "discard"
        case RecordImage():
            return "record"
        case Advance(moves=moves) | Retry(moves=moves) | End(moves=moves):
            kind = type(decision).__name__.lower()
            return f"{kind}:{'>'.join(m.target.value for m in moves)}"
    raise AssertionError(decision)


def moves_of(decision: Decision) -> tuple[Move, ...]:
    assert isinstance(decision, Advance | Retry | End), decision
    return decision.moves


def decide_in_grid(status: S, name: str) -> Decision:
    return decide(generation(status, **BEFORE.get(name, {})), EVENTS[name], NOW, SETTINGS)


@pytest.mark.parametrize(("status", "event", "expected"), GRID)
def test_what_every_event_does_in_every_status(status: S, event: str, expected: str) -> None:
    decision = decide_in_grid(status, event)
    assert outcome(decision) == expected
    if isinstance(decision, Advance | Retry | End):  # one chain of moves from where it stands
        sources = [m.source for m in decision.moves]
        assert sources == [status, *(m.target for m in decision.moves[:-1])]


def test_every_edge_of_the_table_is_taken_by_some_decision_and_no_other() -> None:
    taken = {
        (m.source, m.target)
        for status, name, _expected in GRID
        for m in getattr(decide_in_grid(status, name), "moves", ())
    }
    taken |= {(m.source, m.target) for m in (*accepted(), *accepted(uuid.uuid4())) if m.source is not None}
    assert taken == {(source, target) for source, targets in TRANSITIONS.items() for target in targets}


def test_nothing_happens_to_a_generation_that_does_not_exist() -> None:
    assert all(isinstance(decide(None, event, NOW, SETTINGS), Ignore) for event in EVENTS.values())


@pytest.mark.parametrize("status", [S.QUEUED, S.PROCESSING, S.DOWNLOADING])
@pytest.mark.parametrize(
    "event",
    [
        prediction(P.STARTED, attempt=1),
        prediction(P.SUCCEEDED, attempt=1, output_urls=OUTPUT),
        prediction(P.FAILED, attempt=1, error=TRANSIENT),
        prediction(P.CANCELED, attempt=1),
        media_stored(attempt=1),
        media_failed(attempt=1),
    ],
)
def test_an_older_attempts_event_is_ignored(status: S, event: Event) -> None:
    assert decide(generation(status), event, NOW, SETTINGS) == Ignore("an older attempt's event")


def test_the_media_of_an_older_attempt_is_not_discarded_after_a_cancel() -> None:
    # the current attempt's objects are the ones to discard; an older attempt's belong to no one
    decision = decide(generation(S.CANCELLED), media_stored(attempt=1), NOW, SETTINGS)
    assert isinstance(decision, Ignore)


# ------------------------------------------------------------------------------ on the way


def test_started_takes_the_prediction_and_keeps_the_first_start() -> None:
    decision = decide(generation(S.QUEUED), EVENTS["started"], NOW, SETTINGS)
    assert decision == Advance(
        (Move(S.QUEUED, S.PROCESSING, "prediction started", {"started_at": NOW, "prediction_id": "p-2"}),)
    )
    retried = generation(S.QUEUED, started_at=STARTED)  # started once, then back to queued
    (move,) = moves_of(decide(retried, EVENTS["started"], NOW, SETTINGS))
    assert move.changes["started_at"] == STARTED


def test_succeeded_moves_on_to_download_with_the_output() -> None:
    decision = decide(generation(S.PROCESSING), EVENTS["succeeded"], NOW, SETTINGS)
    changes = {
        "output_urls": list(OUTPUT),
        "cost_usd": 0.003,
        "predict_time_seconds": 1.5,
        "prediction_id": "p-2",
    }
    assert decision == Advance((Move(S.PROCESSING, S.DOWNLOADING, "prediction succeeded", changes),))


def test_succeeded_without_a_prediction_id_keeps_the_known_one() -> None:
    event = prediction(P.SUCCEEDED, output_urls=OUTPUT, prediction_id=None)
    (move,) = moves_of(decide(generation(S.PROCESSING), event, NOW, SETTINGS))
    assert move.changes["prediction_id"] == "p-1"


def test_succeeded_before_started_was_seen_starts_first() -> None:
    decision = decide(generation(S.QUEUED), EVENTS["succeeded"], NOW, SETTINGS)
    assert isinstance(decision, Advance)
    start, download = decision.moves
    assert start == Move(
        S.QUEUED, S.PROCESSING, "prediction started", {"started_at": NOW, "prediction_id": "p-2"}
    )
    assert (download.source, download.target, download.changes["prediction_id"]) == (
        S.PROCESSING,
        S.DOWNLOADING,
        "p-2",
    )


def test_the_image_completes_the_generation_only_if_it_is_its_own() -> None:
    stored = generation(S.DOWNLOADING, image_id=IMAGE)
    assert decide(stored, EVENTS["image"], NOW, SETTINGS) == Advance(
        (Move(S.DOWNLOADING, S.COMPLETED, "image stored", {"completed_at": NOW}),)
    )
    other = c.ImageCreatedEvent(image_id=uuid.uuid4(), generation_id=GID, user_id=uuid.uuid4())
    assert decide(stored, other, NOW, SETTINGS) == Ignore("not the generation's image")


def test_stored_media_is_handed_to_the_catalog_once() -> None:
    assert decide(generation(S.DOWNLOADING), media_stored(), NOW, SETTINGS) == RecordImage(IMAGE, OBJECTS)
    redelivered = decide(generation(S.DOWNLOADING, image_id=IMAGE), media_stored(), NOW, SETTINGS)
    assert redelivered == Ignore("already handed to the catalog")


def test_media_stored_after_the_end_is_discarded_unless_it_is_the_image() -> None:
    keys = tuple(o.key for o in OBJECTS)
    assert decide(generation(S.FAILED), media_stored(), NOW, SETTINGS) == DiscardObjects(keys)
    # failed after the catalog was asked to record the image: the objects are the image's
    assert isinstance(decide(generation(S.FAILED, image_id=IMAGE), media_stored(), NOW, SETTINGS), Ignore)


# ------------------------------------------------------------------------------ failures and retries


def test_a_transient_prediction_failure_goes_back_to_the_queue_after_a_back_off() -> None:
    decision = decide(generation(S.PROCESSING), EVENTS["transient"], NOW, SETTINGS)
    later = NOW + timedelta(seconds=10)
    changes = {
        "attempt": 3,
        "retry_count": 2,
        "prediction_id": None,
        "dispatched_at": None,
        "available_at": later,
    }
    reason = "retry 2 of 3 in 10s: Replicate is unavailable"
    assert decision == Retry(
        (Move(S.PROCESSING, S.QUEUED, reason, changes),), Stage.PREDICT, TRANSIENT, 10.0, later
    )


def test_a_transient_failure_before_the_start_was_seen_waits_in_the_queue_again() -> None:
    decision = decide(generation(S.QUEUED), EVENTS["transient"], NOW, SETTINGS)
    assert isinstance(decision, Retry)
    (move,) = decision.moves
    assert (move.source, move.target, move.changes["attempt"], move.changes["dispatched_at"]) == (
        S.QUEUED,
        S.QUEUED,
        3,
        None,
    )


def test_no_output_is_a_transient_failure() -> None:
    decision = decide(generation(S.PROCESSING), EVENTS["no output"], NOW, SETTINGS)
    assert isinstance(decision, Retry) and decision.error.code == "empty_output"


def test_a_transient_download_failure_fetches_the_same_output_again() -> None:
    decision = decide(generation(S.DOWNLOADING), media_failed(), NOW, SETTINGS)
    later = NOW + timedelta(seconds=10)
    reason = "retry 2 of 3 in 10s: Replicate is unavailable"
    move = Move(S.DOWNLOADING, S.DOWNLOADING, reason, {"attempt": 3, "retry_count": 2})
    assert decision == Retry((move,), Stage.INGEST, TRANSIENT, 10.0, later)


@pytest.mark.parametrize(("retry_count", "delay"), [(0, 5.0), (1, 10.0), (2, 30.0), (3, 30.0), (4, 30.0)])
def test_the_back_off_follows_the_delays_and_the_last_repeats(retry_count: int, delay: float) -> None:
    settings = SETTINGS.model_copy(update={"max_retries": 5})
    decision = decide(generation(S.PROCESSING, retry_count=retry_count), EVENTS["transient"], NOW, settings)
    assert isinstance(decision, Retry)
    assert (decision.delay_seconds, decision.not_before) == (delay, NOW + timedelta(seconds=delay))


def test_without_delays_a_retry_is_at_once() -> None:
    settings = SETTINGS.model_copy(update={"retry_delays_seconds": ()})
    decision = decide(generation(S.PROCESSING), EVENTS["transient"], NOW, settings)
    assert isinstance(decision, Retry) and decision.not_before == NOW


@pytest.mark.parametrize(
    ("status", "event"), [(S.PROCESSING, EVENTS["transient"]), (S.DOWNLOADING, media_failed())]
)
def test_a_transient_failure_fails_once_the_retries_are_used(status: S, event: Event) -> None:
    decision = decide(generation(status, retry_count=3), event, NOW, SETTINGS)
    changes = {"error_code": TRANSIENT.code, "error_message": TRANSIENT.message, "completed_at": NOW}
    assert decision == End((Move(status, S.FAILED, TRANSIENT.message, changes),), TRANSIENT)


def test_no_retry_at_all_when_retries_are_off() -> None:
    settings = SETTINGS.model_copy(update={"max_retries": 0})
    decision = decide(generation(S.PROCESSING, retry_count=0), EVENTS["transient"], NOW, settings)
    assert isinstance(decision, End)


def test_a_permanent_failure_fails_at_once() -> None:
    decision = decide(generation(S.PROCESSING, retry_count=0), EVENTS["permanent"], NOW, SETTINGS)
    changes = {"error_code": "nsfw", "error_message": PERMANENT.message, "completed_at": NOW}
    # the prediction is over: nothing to cancel
    assert decision == End((Move(S.PROCESSING, S.FAILED, PERMANENT.message, changes),), PERMANENT)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (P.FAILED, "prediction_failed", "The model failed without an error message"),
        (P.CANCELED, "prediction_canceled", "The prediction was canceled"),
    ],
)
def test_a_prediction_that_ended_without_an_error_fails_permanently(
    status: P, code: str, message: str
) -> None:
    decision = decide(generation(S.PROCESSING, retry_count=0), prediction(status), NOW, SETTINGS)
    assert isinstance(decision, End) and decision.error is not None
    assert (decision.error.kind, decision.error.code, decision.error.message) == (
        ErrorKind.PERMANENT,
        code,
        message,
    )


# ------------------------------------------------------------------------------ deadlines, cancel, poison

TIMEOUT_MESSAGE = "The generation did not finish within 1800 seconds"


@pytest.mark.parametrize(
    ("event", "seconds_before_the_deadline", "code"),
    [
        (prediction(P.CANCELED), 1.5, "timeout"),  # the adapter's cancel may come a second early
        (prediction(P.CANCELED), 2.0, "prediction_canceled"),
        (
            prediction(P.FAILED, error=PERMANENT.model_copy(update={"code": "prediction_aborted"})),
            0.0,
            "timeout",
        ),
        (prediction(P.FAILED, error=PERMANENT), 0.0, "nsfw"),
    ],
)
def test_a_prediction_stopped_at_the_deadline_is_a_timeout(
    event: Event, seconds_before_the_deadline: float, code: str
) -> None:
    now = CREATED + timedelta(seconds=1800 - seconds_before_the_deadline)
    decision = decide(generation(S.PROCESSING), event, now, SETTINGS)
    assert isinstance(decision, End) and decision.error is not None
    assert decision.error.code == code
    if code == "timeout":
        assert decision.error == ErrorInfo(kind=ErrorKind.PERMANENT, code="timeout", message=TIMEOUT_MESSAGE)


@pytest.mark.parametrize(
    ("event", "code", "message"),
    [
        (TotalTimeout(), "timeout", TIMEOUT_MESSAGE),
        (StartDeadline(), "start_deadline", "The generation did not start within 900 seconds"),
        (Cancel(), "cancelled", "Cancelled by user"),
    ],
)
@pytest.mark.parametrize(
    ("status", "dispatched", "cancel_prediction"),
    [
        (S.QUEUED, False, False),  # waiting for a slot: nothing runs
        (S.QUEUED, True, True),  # dispatched: the prediction may be starting
        (S.PROCESSING, True, True),
        (S.DOWNLOADING, True, False),  # the prediction is over
    ],
)
def test_ending_a_generation_stops_a_prediction_that_may_run(
    event: Event, code: str, message: str, status: S, dispatched: bool, cancel_prediction: bool
) -> None:
    decision = decide(generation(status, dispatched=dispatched), event, NOW, SETTINGS)
    if isinstance(event, StartDeadline) and status is not S.QUEUED:
        assert decision == Ignore("started in time")
        return
    target = S.CANCELLED if isinstance(event, Cancel) else S.FAILED
    changes = {"error_code": code, "error_message": message, "completed_at": NOW}
    assert decision == End((Move(status, target, message, changes),), None, cancel_prediction)


def test_the_start_deadline_spares_a_generation_waiting_for_its_retry_after_it_started() -> None:
    retried = generation(S.QUEUED, started_at=STARTED)
    assert decide(retried, StartDeadline(), NOW, SETTINGS) == Ignore("started in time")


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_a_generation_that_is_over_cannot_be_cancelled_or_failed(terminal: S) -> None:
    for event in (Cancel(), TotalTimeout(), EVENTS["poisoned"]):
        assert decide(generation(terminal), event, NOW, SETTINGS) == Ignore(f"already {terminal}")


def test_a_poisoned_event_fails_the_generation_and_records_why() -> None:
    event = Poisoned("media.stored", "KeyError", "x" * 600)
    decision = decide(generation(S.DOWNLOADING), event, NOW, SETTINGS)
    assert isinstance(decision, End)
    assert decision.error == ErrorInfo(
        kind=ErrorKind.PERMANENT,
        code="poison_message",
        message="media.stored could not be processed",
        details={"reason": "KeyError", "detail": "x" * 500},
    )
    (move,) = decision.moves
    assert move.changes["error_message"] == "The generation could not be processed; please try again"


# ------------------------------------------------------------------------------ acceptance


def test_an_accepted_generation_is_queued_or_completed_with_a_reused_image() -> None:
    assert [(m.source, m.target) for m in accepted()] == [(None, S.PENDING), (S.PENDING, S.QUEUED)]
    source = uuid.uuid4()
    reused = accepted(source)
    assert [m.target for m in reused] == [S.PENDING, S.QUEUED, S.PROCESSING, S.DOWNLOADING, S.COMPLETED]
    assert reused[-1].reason == f"reused the image of identical generation {source}"
