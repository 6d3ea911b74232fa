"""Write side: commands the catalog consumes."""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import library
from picture.catalog.tables import images
from picture.common import contracts as c
from picture.common.contracts import (
    IMAGE_CREATED,
    EnsureProfileCommand,
    ImageCreatedEvent,
    RecordImageCommand,
    TemplateUsedCommand,
)
from picture.common.ids import derived_id
from picture.common.messaging import Bus, Delivery, Reject

log = logging.getLogger(__name__)


async def record_image(engine: AsyncEngine, bus: Bus, delivery: Delivery[RecordImageCommand]) -> None:
    """Insert the image (no-op when it exists: redelivery), then announce it.

    The announcement is repeated on redelivery on purpose: if we crashed between insert and
    publish, this is how it gets out. Its id is derived from the image id, so JetStream drops
    the copy inside its window and the orchestrator's transition is idempotent after it.
    """
    cmd = delivery.message
    original = next((o for o in cmd.objects if o.role == "original"), None)
    if original is None:
        raise Reject("record_image without an original object")
    thumbnail = next((o for o in cmd.objects if o.role == "thumbnail"), None)
    fmt = original.content_type.split("/")[-1].split("+")[0]
    async with engine.begin() as conn:
        await conn.execute(
            insert(images)
            .values(
                id=cmd.image_id,
                user_id=cmd.user_id,
                generation_id=cmd.generation_id,
                filename=f"{cmd.generation_id}.{fmt}",
                content_key=original.key,
                thumbnail_key=thumbnail.key if thumbnail else None,
                file_size=original.size,
                width=original.width,
                height=original.height,
                format=fmt,
                sha256=original.sha256,
                prompt=cmd.prompt,
                negative_prompt=cmd.negative_prompt,
                model=cmd.model,
                seed=cmd.seed,
                blurhash=original.blurhash,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
    await bus.publish(
        IMAGE_CREATED,
        ImageCreatedEvent(image_id=cmd.image_id, generation_id=cmd.generation_id, user_id=cmd.user_id),
        message_id=derived_id("image.created", cmd.image_id),
        generation_id=cmd.generation_id,
    )


async def ensure_profile(engine: AsyncEngine, delivery: Delivery[EnsureProfileCommand]) -> None:
    """Create the user's profile on first sight (idempotent; a newer email replaces the old)."""
    async with engine.begin() as conn:
        await library.ensure_profile(conn, delivery.message.user_id, delivery.message.email)


async def image_downloaded(engine: AsyncEngine, delivery: Delivery[c.ImageDownloadedCommand]) -> None:
    """Count one download (explore's "popular" sort is likes + downloads)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(images)
            .where(images.c.id == delivery.message.image_id)
            .values(download_count=images.c.download_count + 1)
        )


async def template_used(engine: AsyncEngine, delivery: Delivery[TemplateUsedCommand]) -> None:
    """Count one use of a prompt template per generation (idempotent on the generation id)."""
    if not await library.template_used(engine, delivery.message):
        log.info("template_used for an unknown or private template %s", delivery.message.template_id)
