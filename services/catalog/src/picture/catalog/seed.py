"""The catalog's seed: the model records of ``seed_models.json`` (the one place they are written).

Revision 0002 inserts them; a later revision that adds a column or corrects a seeded value reads
the same file (or names the old value it replaces), so a fresh database and a migrated one end
with the same rows. Tests of other packages read the file by path (:data:`SEED_FILE`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SEED_FILE", "load_seed"]

SEED_FILE = Path(__file__).with_name("seed_models.json")


def load_seed() -> list[dict[str, Any]]:
    """The seeded model records, in catalog order."""
    records: list[dict[str, Any]] = json.loads(SEED_FILE.read_text(encoding="utf-8"))
    return records
