"""Write side: the commands media consumes (``ingest``, ``delete``).

An ingest downloads the first source URL, processes it off the event loop, stores an original
and a thumbnail under keys derived from the generation (a redelivery overwrites the same
objects and upserts the same rows), then announces ``media.stored``. Failures are classified
(:mod:`picture.media.errors`): transient ones are retried here a few times, then reported;
permanent ones are reported at once. Either way the command is acknowledged: the orchestrator
owns the decision to try again. Only infrastructure failures (storage, database, NATS) make
the consumer redeliver; on the last delivery :func:`on_poison` reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.contracts import (
    MEDIA_FAILED,
    MEDIA_STORED,
    DeleteObjectsCommand,
    ErrorInfo,
    ErrorKind,
    IngestCommand,
    MediaFailedEvent,
    MediaStoredEvent,
    StoredObject,
)
from picture.common.ids import derived_id
from picture.common.messaging import Bus, Delivery
from picture.media.download import Downloader
from picture.media.errors import (
    InvalidKeyError,
    MediaError,
    PermanentMediaError,
    TransientMediaError,
)
from picture.media.metrics import INGESTS, PROCESSING_SECONDS, STORED_BYTES
from picture.media.processing import (
    DEFAULT_WEBP_METHOD,
    ProcessedImage,
    Provenance,
    Rendition,
    process_image,
)
from picture.media.storage import ObjectStorage, validate_key
from picture.media.svg import SVG
from picture.media.tables import stored_objects

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class ProcessingOptions:
    webp_quality: int = 88
    webp_method: int = DEFAULT_WEBP_METHOD
    max_pixels: int = 40_000_000
    thumbnail_long_side: int = 256
    # Pauses between download attempts inside one delivery: 3 attempts in all.
    retry_delays: tuple[float, ...] = (0.5, 1.0)
    # Every attempt and pause of one ingest's download ends within this (the orchestrator's
    # sweeper waits longer before it resumes the generation: ingest_download_budget_seconds).
    download_budget_seconds: float = 90.0
    # Write the generation's model, prompt and seed as XMP into the stored original.
    embed_provenance: bool = True
    svg_preview_long_side: int = 1024


@dataclass(frozen=True)
class MediaContext:
    """What the handlers need, built once in the lifespan."""

    engine: AsyncEngine
    bus: Bus
    storage: ObjectStorage
    downloader: Downloader
    options: ProcessingOptions


def stored_objects_of(prefix: str, processed: ProcessedImage) -> list[tuple[StoredObject, Rendition]]:
    """What to store for a processed image under ``prefix`` (server-made), with its bytes.

    Raster: ``image.webp`` and ``thumb.webp``. SVG: the sanitised ``image.svg``, its rendered
    ``preview.webp`` and ``thumb.webp``. The original carries the blurhash."""
    original_name = "image.svg" if processed.original.content_type == SVG else "image.webp"
    parts = [
        (
            _stored(f"{prefix}/{original_name}", "original", processed.original, processed.blurhash),
            processed.original,
        ),
        (_stored(f"{prefix}/thumb.webp", "thumbnail", processed.thumbnail), processed.thumbnail),
    ]
    if processed.preview is not None:
        parts.append((_stored(f"{prefix}/preview.webp", "preview", processed.preview), processed.preview))
    return parts


@contextlib.asynccontextmanager
async def heartbeat(delivery: Delivery[Any], every: float = HEARTBEAT_SECONDS) -> AsyncIterator[None]:
    """Keep telling JetStream we are working on ``delivery`` while the block runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await delivery.in_progress()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def download_with_retries(
    downloader: Downloader,
    url: str,
    delays: Sequence[float],
    delivery: Delivery[Any] | None = None,
    *,
    budget_seconds: float = 90.0,
) -> bytes:
    """Fetch ``url``; transient failures are tried again after each of ``delays``, all within
    ``budget_seconds`` (then a transient failure, like a timeout)."""
    try:
        async with asyncio.timeout(budget_seconds):
            return await _download_attempts(downloader, url, delays, delivery)
    except TimeoutError as exc:
        raise TransientMediaError(
            "download_timeout", f"the source could not be downloaded within {budget_seconds:g} s"
        ) from exc


async def _download_attempts(
    downloader: Downloader, url: str, delays: Sequence[float], delivery: Delivery[Any] | None
) -> bytes:
    for attempt, delay in enumerate((*delays, None), start=1):
        try:
            return await downloader.fetch(url)
        except TransientMediaError as exc:
            if delay is None:
                raise
            log.info("download attempt %d of %s failed (%s); retrying", attempt, url, exc.code)
            if delivery is not None:
                with contextlib.suppress(Exception):
                    await delivery.in_progress()
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def process(
    data: bytes,
    max_long_side: int,
    options: ProcessingOptions,
    *,
    provenance: Provenance | None = None,
    allow_svg: bool = True,
) -> ProcessedImage:
    """:func:`process_image` off the event loop, timed."""
    started = time.perf_counter()
    try:
        return await asyncio.to_thread(
            process_image,
            data,
            max_long_side=max_long_side,
            thumbnail_long_side=options.thumbnail_long_side,
            quality=options.webp_quality,
            method=options.webp_method,
            max_pixels=options.max_pixels,
            provenance=provenance if options.embed_provenance else None,
            allow_svg=allow_svg,
            svg_preview_long_side=options.svg_preview_long_side,
        )
    finally:
        PROCESSING_SECONDS.observe(time.perf_counter() - started)


def _stored(key: str, role: str, rendition: Rendition, blurhash: str | None = None) -> StoredObject:
    return StoredObject.model_validate(
        {
            "key": key,
            "role": role,
            "content_type": rendition.content_type,
            "size": rendition.size,
            "width": rendition.width,
            "height": rendition.height,
            "sha256": rendition.sha256,
            "blurhash": blurhash,
        }
    )


async def record_objects(
    engine: AsyncEngine, owner_id: uuid.UUID, generation_id: uuid.UUID | None, objects: Sequence[StoredObject]
) -> None:
    """Upsert the rows of stored objects (a redelivery rewrites the same keys)."""
    now = datetime.now(UTC)
    rows = [
        {
            "key": o.key,
            "owner_id": owner_id,
            "generation_id": generation_id,
            "role": o.role,
            "content_type": o.content_type,
            "size": o.size,
            "width": o.width,
            "height": o.height,
            "sha256": o.sha256,
            "created_at": now,
        }
        for o in objects
    ]
    stmt = insert(stored_objects).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[stored_objects.c.key],
        set_={
            name: stmt.excluded[name]
            for name in (
                "owner_id",
                "generation_id",
                "role",
                "content_type",
                "size",
                "width",
                "height",
                "sha256",
            )
        },
    )
    async with engine.begin() as conn:
        await conn.execute(stmt)


async def publish_failed(bus: Bus, cmd: IngestCommand, error: ErrorInfo) -> None:
    await bus.publish(
        MEDIA_FAILED,
        MediaFailedEvent(generation_id=cmd.generation_id, attempt=cmd.attempt, error=error),
        message_id=derived_id("media.failed", cmd.generation_id, cmd.attempt),
        generation_id=cmd.generation_id,
    )


async def ingest(ctx: MediaContext, delivery: Delivery[IngestCommand]) -> None:
    cmd = delivery.message
    try:
        async with heartbeat(delivery):
            objects = await _ingest(ctx, cmd, delivery)
    except MediaError as exc:
        INGESTS.labels(exc.kind.value).inc()
        log.warning(
            "ingest of generation %s attempt %d failed (%s, %s): %s",
            cmd.generation_id,
            cmd.attempt,
            exc.kind.value,
            exc.code,
            exc.message,
        )
        await publish_failed(ctx.bus, cmd, exc.to_error_info())
        return
    INGESTS.labels("stored").inc()
    await ctx.bus.publish(
        MEDIA_STORED,
        MediaStoredEvent(generation_id=cmd.generation_id, attempt=cmd.attempt, objects=objects),
        message_id=derived_id("media.stored", cmd.generation_id, cmd.attempt),
        generation_id=cmd.generation_id,
    )


async def _ingest(
    ctx: MediaContext, cmd: IngestCommand, delivery: Delivery[IngestCommand]
) -> tuple[StoredObject, ...]:
    if not cmd.source_urls:
        raise PermanentMediaError("no_source", "the generation produced no output to store")
    data = await download_with_retries(
        ctx.downloader,
        cmd.source_urls[0],
        ctx.options.retry_delays,
        delivery,
        budget_seconds=ctx.options.download_budget_seconds,
    )
    await delivery.in_progress()
    provenance = Provenance(model=cmd.model, prompt=cmd.prompt, seed=cmd.seed)
    processed = await process(data, cmd.max_long_side, ctx.options, provenance=provenance)
    await delivery.in_progress()
    parts = stored_objects_of(f"{cmd.user_id}/{cmd.generation_id}", processed)
    await put_all(ctx.storage, parts)
    objects = tuple(obj for obj, _ in parts)
    await record_objects(ctx.engine, cmd.user_id, cmd.generation_id, objects)
    return objects


async def put_all(storage: ObjectStorage, parts: Sequence[tuple[StoredObject, Rendition]]) -> None:
    for obj, rendition in parts:
        await storage.put(obj.key, rendition.data, rendition.content_type)
        STORED_BYTES.labels(obj.role).inc(rendition.size)


async def delete_objects(ctx: MediaContext, delivery: Delivery[DeleteObjectsCommand]) -> None:
    """Remove objects and their rows; keys already gone are fine (idempotent)."""
    keys: list[str] = []
    for key in delivery.message.keys:
        try:
            keys.append(validate_key(key))
        except InvalidKeyError:
            log.warning("delete: skipping invalid key %r", key)
    for key in keys:
        await ctx.storage.delete(key)
    if keys:
        async with ctx.engine.begin() as conn:
            await conn.execute(delete(stored_objects).where(stored_objects.c.key.in_(keys)))


async def on_poison(ctx: MediaContext, delivery: Delivery[Any], exc: BaseException) -> None:
    """Last delivery failed on infrastructure: report the ingest as a transient failure."""
    if isinstance(delivery.message, IngestCommand):
        error = ErrorInfo(
            kind=ErrorKind.TRANSIENT,
            code="storage_failed",
            message="the image could not be stored; try again later",
            details={"reason": type(exc).__name__},
        )
        await publish_failed(ctx.bus, delivery.message, error)
