"""CPU time of the stack's processes, for benchmarks: where the cores went.

Linux only (reads /proc). A process's figure includes its descendants (PostgreSQL's backends
are children of the postmaster), counting only those still alive at the reading, so read
before and after a run and take the difference while the processes live.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system seconds) of one process; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # after "(comm)", which may contain spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named root process and its live descendants."""
    parent_of: dict[int, int] = {}
    own: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parent_of[int(entry.name)], own[int(entry.name)] = stat
    totals: dict[str, float] = defaultdict(float)
    root_names = {pid: name for name, pid in roots.items()}
    for pid, seconds in own.items():
        ancestor: int | None = pid
        while ancestor is not None and ancestor not in root_names:
            ancestor = parent_of.get(ancestor)
            if ancestor in (0, 1):
                ancestor = None
        if ancestor is not None:
            totals[root_names[ancestor]] += seconds
    return dict(totals)


def ms_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """Milliseconds of CPU per item (generation, request) by process between two readings."""
    return {name: 1000 * (after[name] - before.get(name, 0.0)) / items for name in after}
