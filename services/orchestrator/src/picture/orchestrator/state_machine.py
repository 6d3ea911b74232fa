"""The generation state machine: a pure transition table, no I/O.

    pending -> queued -> processing -> downloading -> completed
    any non-terminal -> failed | cancelled
    processing | downloading -> queued        (a retry, with retry_count + 1)

Terminal states never change.
"""

from __future__ import annotations

from picture.common.contracts import GenerationStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.QUEUED, S.FAILED, S.CANCELLED}),
    S.QUEUED: frozenset({S.PROCESSING, S.FAILED, S.CANCELLED}),
    S.PROCESSING: frozenset({S.DOWNLOADING, S.QUEUED, S.FAILED, S.CANCELLED}),
    S.DOWNLOADING: frozenset({S.COMPLETED, S.QUEUED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


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
    """The old product's view: it had no "cancelled" (stored as failed, "Cancelled by user")."""
    return S.FAILED.value if status is S.CANCELLED else status.value
