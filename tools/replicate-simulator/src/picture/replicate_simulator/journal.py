"""Predictions kept on disk (``<data dir>/predictions/<id>.json``), so a restarted simulator
still knows its work, as the real Replicate does when our processes restart.

Each change of a prediction rewrites its file atomically (a temporary file, then a rename): a
SIGKILL leaves the previous version or the new one, never half a file. Without a data folder
the simulator keeps everything in memory only.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class PredictionJournal:
    """One JSON file per prediction under ``root``."""

    def __init__(self, root: Path) -> None:
        self._dir = root / "predictions"
        self._dir.mkdir(parents=True, exist_ok=True)

    def save(self, prediction_id: str, record: dict[str, Any]) -> None:
        write_atomically(self._dir / f"{prediction_id}.json", json.dumps(record).encode())

    def delete(self, prediction_id: str) -> None:
        (self._dir / f"{prediction_id}.json").unlink(missing_ok=True)

    def clear(self) -> None:
        for path in self._dir.iterdir():
            path.unlink(missing_ok=True)

    def load(self) -> list[dict[str, Any]]:
        """Every stored prediction, oldest first (by its sequence number)."""
        records = []
        for path in self._dir.glob("*.json"):
            try:
                records.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                logger.warning("skipping unreadable prediction file %s", path)
        return sorted(records, key=lambda r: int(r["seq"]))
