"""Which listed prediction is ours after a create that may have reached Replicate.

Replicate's list items carry the input but not the webhook URL nor anything else we control,
and another attempt with the same request (same prompt, same parameters) has the same input.
What identifies our attempt is therefore the input *and the time*: Replicate created our
prediction while one of our create requests was in flight (``create_sent_at`` ..
``create_settled_at``, plus a clock-skew margin). :func:`choose` is pure:

- candidates outside our window, or already recorded by another attempt, are not ours;
- a candidate inside the window of another attempt that has not recorded its own prediction
  (its create is in flight, uncertain, or was given up) could be that attempt's: it is never
  adopted; when only such candidates remain we adopt nothing (:class:`Contested`) and look
  again later, never guess;
- of the others, the earliest is ours; any later ones are also ours (a retried create that
  went through twice) and are returned as ``extra`` to be canceled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Adopt", "Candidate", "Contested", "NotFound", "Window", "choose"]


@dataclass(frozen=True)
class Window:
    """When an attempt's create requests were in flight (``end`` None: still open)."""

    start: datetime
    end: datetime | None

    def holds(self, moment: datetime, skew: timedelta) -> bool:
        if moment < self.start - skew:
            return False
        return self.end is None or moment <= self.end + skew


@dataclass(frozen=True)
class Candidate:
    """A listed prediction of the same model and request."""

    id: str
    created_at: datetime


@dataclass(frozen=True)
class Adopt:
    prediction_id: str
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotFound:
    """Nothing was created for this attempt: creating is safe."""


@dataclass(frozen=True)
class Contested:
    """A candidate may be another attempt's: decide later."""

    prediction_ids: tuple[str, ...]


Decision = Adopt | NotFound | Contested


def choose(
    own: Window,
    candidates: Sequence[Candidate],
    claimed: set[str],
    rivals: Sequence[Window],
    skew: timedelta,
) -> Decision:
    """Our prediction among ``candidates``, given the ids other attempts recorded
    (``claimed``) and the windows of other attempts with the same request that recorded none
    (``rivals``)."""
    mine = sorted(
        (c for c in candidates if c.id not in claimed and own.holds(c.created_at, skew)),
        key=lambda c: (c.created_at, c.id),
    )
    if not mine:
        return NotFound()
    contested = [c for c in mine if any(r.holds(c.created_at, skew) for r in rivals)]
    sure = [c for c in mine if c not in contested]
    if not sure:
        return Contested(tuple(c.id for c in contested))
    return Adopt(sure[0].id, tuple(c.id for c in sure[1:]))
