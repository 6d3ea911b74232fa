"""choose(): which listed prediction an uncertain create made, one row per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from picture.replicate_adapter.reconcile import Adopt, Candidate, Contested, NotFound, Window, choose

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def window(start: float, end: float | None) -> Window:
    return Window(at(start), None if end is None else at(end))


def cand(prediction_id: str, seconds: float) -> Candidate:
    return Candidate(prediction_id, at(seconds))


OWN = window(0, 30)  # our create was in flight from 0 s to 30 s (it timed out)


@pytest.mark.parametrize(
    ("candidates", "claimed", "rivals", "expected"),
    [
        pytest.param([], set(), [], NotFound(), id="nothing-listed"),
        pytest.param([cand("a", 1)], set(), [], Adopt("a"), id="ours"),
        pytest.param([cand("old", -60)], set(), [], NotFound(), id="before-our-window"),
        pytest.param([cand("late", 60)], set(), [], NotFound(), id="after-our-window"),
        pytest.param([cand("skew", -4)], set(), [], Adopt("skew"), id="within-clock-skew"),
        pytest.param(
            [cand("theirs", 2), cand("ours", 1)],
            {"theirs"},
            [],
            Adopt("ours"),
            id="another-attempt-recorded-it",
        ),
        pytest.param([cand("theirs", 2)], {"theirs"}, [], NotFound(), id="only-anothers"),
        pytest.param(
            [cand("x", 2)], set(), [window(1, None)], Contested(("x",)), id="rival-create-in-flight"
        ),
        pytest.param([cand("x", 2)], set(), [window(1, 20)], Contested(("x",)), id="rival-also-uncertain"),
        pytest.param([cand("x", 25)], set(), [window(1, 10)], Adopt("x"), id="after-the-rivals-window"),
        pytest.param(
            [cand("contested", 3), cand("sure", 25)],
            set(),
            [window(1, 10)],
            Adopt("sure"),
            id="the-uncontested-one",
        ),
        pytest.param(
            [cand("second", 20), cand("first", 2)], set(), [], Adopt("first", ("second",)), id="created-twice"
        ),
    ],
)
def test_choose(
    candidates: list[Candidate], claimed: set[str], rivals: list[Window], expected: object
) -> None:
    assert choose(OWN, candidates, claimed, rivals, SKEW) == expected


def test_a_create_still_in_flight_has_no_end_yet() -> None:
    """Killed mid-create: the window stays open (any later prediction may be ours)."""
    assert choose(window(0, None), [cand("late", 500)], set(), [], SKEW) == Adopt("late")
