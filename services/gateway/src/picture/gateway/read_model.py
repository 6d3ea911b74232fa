"""The gateway's read model of generations: the newest view of each, kept from its events.

A generation's row is written when the gateway accepts it (version 0, status "pending", see
:mod:`picture.gateway.acceptance`) and replaced by every GENERATION_UPDATED event whose view has
a higher version (the orchestrator counts its changes), so an event that arrives late or twice
never turns a view back, and every gateway replica reads the same newest state. A GET is one
primary-key read here, not a request to the orchestrator.

Generations older than this table are not in it: :meth:`GenerationViews.get` misses and the
caller asks the orchestrator (and :meth:`apply` keeps the answer).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from picture.common import contracts as c

# On the asyncpg pool (a GET is this one statement): positional parameters.
_GET = "SELECT user_id, version, view FROM gateway.generation_views WHERE id = $1"
# a lower or equal version changes nothing
_APPLY = """
    INSERT INTO gateway.generation_views AS g (id, user_id, version, status, view, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (id) DO UPDATE SET
      version = excluded.version, status = excluded.status, view = excluded.view,
      updated_at = excluded.updated_at
    WHERE g.version < excluded.version
"""
_APPLY_COLUMNS = ("id", "user_id", "version", "status", "view", "created_at", "updated_at")


@dataclass(frozen=True)
class StoredView:
    user_id: uuid.UUID
    version: int
    view: c.GenerationView


def view_row(view: c.GenerationView) -> dict[str, object]:
    """The read model's row of ``view`` (also the acceptance's insert)."""
    return {
        "id": view.id,
        "user_id": view.user_id,
        "version": view.version,
        "status": view.status.value,
        "view": view.model_dump_json().encode(),
        "created_at": view.created_at,
        "updated_at": datetime.now(UTC),
    }


class GenerationViews:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, generation_id: uuid.UUID) -> StoredView | None:
        row = await self._pool.fetchrow(_GET, generation_id)
        if row is None:
            return None
        return StoredView(row["user_id"], row["version"], c.GenerationView.model_validate_json(row["view"]))

    async def apply(self, views: Sequence[c.GenerationView]) -> None:
        """Keep each view unless a newer one is stored already."""
        if not views:
            return
        rows = [view_row(view) for view in views]
        await self._pool.executemany(_APPLY, [tuple(row[k] for k in _APPLY_COLUMNS) for row in rows])
