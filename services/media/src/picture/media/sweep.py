"""The sweep of stored objects no image points at.

Media stores the objects but the catalog owns the image records that point at them, so the
sweep asks instead of reading the catalog's tables: it lists the objects written before a
grace period (an object of a generation still in flight is fresh, so never a candidate: it is
recorded by the catalog long before the grace period ends), asks the catalog which of their
keys an image points at (``catalog.referenced_keys``, in batches), and deletes the others with
their rows in ``media.stored_objects``.

An image's objects share a folder (``image.webp``, ``thumb.webp``, an SVG's ``preview.webp``,
which the image record does not name): a folder is kept whole when any of its keys is
referenced. A failed query stops the round (nothing is deleted on a guess); the next round
starts over. One replica sweeps at a time (a session advisory lock); ``dry_run`` only logs
and counts what would go.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common import contracts as c
from picture.common.database import autocommit
from picture.common.messaging import Bus
from picture.media.metrics import SWEPT_OBJECTS
from picture.media.storage import ObjectStorage
from picture.media.tables import stored_objects

log = logging.getLogger(__name__)

SWEEP_LOCK = 0x5049_4353  # "PICS": pg_try_advisory_lock key of the storage sweep


@dataclass
class SweepResult:
    dry_run: bool
    candidates: int = 0  # objects older than the grace period
    referenced: int = 0  # kept: their folder holds a referenced key
    removed: int = 0  # deleted (or, in a dry run, that would be)


@dataclass(frozen=True)
class Sweeper:
    engine: AsyncEngine
    bus: Bus
    storage: ObjectStorage
    grace_seconds: float
    batch_size: int
    dry_run: bool

    async def sweep_once(self, now: datetime | None = None) -> SweepResult | None:
        """One sweep; None when another replica holds the sweep's lock."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=self.grace_seconds)
        # autocommit: the lock is the session's, and no transaction stays open for the sweep
        async with autocommit(self.engine).connect() as conn:
            if not await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": SWEEP_LOCK}):
                return None
            try:
                result = await self._sweep(cutoff)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SWEEP_LOCK})
        if result.candidates:
            log.info(
                "storage sweep%s: %d old objects, %d referenced, %d %s",
                " (dry run)" if self.dry_run else "",
                result.candidates,
                result.referenced,
                result.removed,
                "would be removed" if self.dry_run else "removed",
            )
        return result

    async def _sweep(self, cutoff: datetime) -> SweepResult:
        result = SweepResult(self.dry_run)
        batch: list[list[str]] = []
        size = 0
        async for folder in _folders(self.storage.list_older_than(cutoff)):
            batch.append(folder)
            size += len(folder)
            if size >= self.batch_size:
                await self._settle(batch, result)
                batch, size = [], 0
        if batch:
            await self._settle(batch, result)
        return result

    async def _settle(self, folders: Sequence[list[str]], result: SweepResult) -> None:
        keys = [key for folder in folders for key in folder]
        referenced: set[str] = set()
        for start in range(0, len(keys), c.MAX_REFERENCED_KEYS):
            chunk = tuple(keys[start : start + c.MAX_REFERENCED_KEYS])
            reply = await self.bus.request(c.REFERENCED_KEYS, c.ReferencedKeysRequest(keys=chunk))
            referenced.update(reply.keys)
        orphans = [key for folder in folders if not referenced.intersection(folder) for key in folder]
        result.candidates += len(keys)
        result.referenced += len(keys) - len(orphans)
        SWEPT_OBJECTS.labels("kept").inc(len(keys) - len(orphans))
        if not orphans:
            return
        if self.dry_run:
            for key in orphans:
                log.info("storage sweep (dry run): would remove %s", key)
            result.removed += len(orphans)
            SWEPT_OBJECTS.labels("would_remove").inc(len(orphans))
            return
        for key in orphans:
            await self.storage.delete(key)  # a missing object is no error
        async with self.engine.begin() as conn:
            await conn.execute(delete(stored_objects).where(stored_objects.c.key.in_(orphans)))
        result.removed += len(orphans)
        SWEPT_OBJECTS.labels("removed").inc(len(orphans))


async def _folders(keys: AsyncIterator[str]) -> AsyncIterator[list[str]]:
    """Consecutive keys grouped by folder (the listing is in key order)."""
    current: list[str] = []
    current_folder: str | None = None
    async for key in keys:
        folder = key.rpartition("/")[0]
        if current and folder != current_folder:
            yield current
            current = []
        current_folder = folder
        current.append(key)
    if current:
        yield current
