"""Parsing of the request headers Replicate gives meaning to: ``Prefer`` and ``Cancel-After``."""

from __future__ import annotations

import re

from picture.replicate_simulator.errors import ProblemError

MAX_WAIT_SECONDS = 60
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_prefer_wait(header: str | None) -> int | None:
    """Seconds to hold a create request for ``Prefer: wait[=N]``; ``None`` when not asked."""
    if not header:
        return None
    for preference in header.split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        if not value.strip():
            return MAX_WAIT_SECONDS
        try:
            seconds = int(value.strip())
        except ValueError as exc:
            raise ProblemError(400, f"Invalid Prefer header: {header!r}") from exc
        return min(max(seconds, 1), MAX_WAIT_SECONDS)
    return None


def parse_duration(text: str) -> float:
    """Parse ``Cancel-After`` values: ``"30s"``, ``"1m"``, ``"1h30m"``, ``"500ms"`` or seconds."""
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(raw) or not raw:
            raise ProblemError(400, f"Invalid Cancel-After header: {text!r}") from None
    if seconds <= 0:
        raise ProblemError(400, f"Invalid Cancel-After header: {text!r}")
    return seconds
