"""The run's report: per table, how many rows were imported, found already imported, or
skipped; every skipped row or object with its reason, and every row imported with a change."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from picture.importer.plan import Skip

OUTCOMES = ("imported", "already", "skipped")


@dataclass
class Report:
    dry_run: bool = False
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[Skip] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)

    def count(self, table: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(table, Counter())[outcome] += n

    def skip(self, skip: Skip) -> None:
        self.skipped.append(skip)
        self.count(skip.table, "skipped")

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "counts": {t: {o: n[o] for o in OUTCOMES} for t, n in sorted(self.counts.items())},
            "skipped": [s.__dict__ for s in self.skipped],
            "changed": [s.__dict__ for s in self.notes],
            "missing_tables": self.missing_tables,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_text(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        lines = [f"{'table':<20} {verb:>12} {'already':>8} {'skipped':>8}"]
        for table, n in sorted(self.counts.items()):
            lines.append(f"{table:<20} {n['imported']:>12} {n['already']:>8} {n['skipped']:>8}")
        if self.missing_tables:
            lines.append(f"tables not found in the source: {', '.join(self.missing_tables)}")
        for title, items in (("skipped", self.skipped), ("imported with a change", self.notes)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  {s.table} {s.key}: {s.reason}" for s in items]
        return "\n".join(lines)
