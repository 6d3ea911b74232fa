"""The transition table, every pair: allowed ones pass, every other is refused."""

from __future__ import annotations

import itertools

import pytest

from picture.common.contracts import GenerationStatus as S
from picture.orchestrator.state_machine import (
    InvalidTransition,
    can_transition,
    legacy_status,
    transition,
)

ALLOWED = {
    (S.PENDING, S.QUEUED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CANCELLED),
    (S.QUEUED, S.PROCESSING),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELLED),
    (S.PROCESSING, S.DOWNLOADING),
    (S.PROCESSING, S.QUEUED),
    (S.PROCESSING, S.FAILED),
    (S.PROCESSING, S.CANCELLED),
    (S.DOWNLOADING, S.COMPLETED),
    (S.DOWNLOADING, S.QUEUED),
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
