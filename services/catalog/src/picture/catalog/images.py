"""Image records: inserted once per stored image (generated or uploaded), shown as an
``ImageView`` or an ``ImageDetail``, changed and deleted by their owner.

Visibility: an image is visible to its owner, and to everyone when public; anything else is
NOT_FOUND (never "forbidden": that would confirm the id exists). Changes are owner-only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.catalog.outbox import enqueue
from picture.catalog.tables import image_tags, images, profiles, tags
from picture.common import contracts as c
from picture.common.ids import derived_id
from picture.common.messaging import Bus, QueryFailed, Reject

# Every column but the search vector, which no view shows.
IMAGE_COLUMNS = tuple(col for col in images.c if col.name != "search")


# ------------------------------------------------------------------------------------ insert


@dataclass(frozen=True)
class StoredFiles:
    """The stored objects an image row points at: the original and, when made, its thumbnail."""

    original: c.StoredObject
    thumbnail: c.StoredObject | None

    @classmethod
    def of(cls, objects: Sequence[c.StoredObject]) -> StoredFiles | None:
        """None without an original: there is nothing to record."""
        original = next((o for o in objects if o.role == "original"), None)
        if original is None:
            return None
        return cls(original, next((o for o in objects if o.role == "thumbnail"), None))

    @property
    def format(self) -> str:
        """ "webp" of image/webp, "svg" of image/svg+xml."""
        return self.original.content_type.split("/")[-1].split("+")[0]


async def insert_image(
    conn: AsyncConnection,
    files: StoredFiles,
    *,
    image_id: uuid.UUID,
    user_id: uuid.UUID,
    filename: str,
    prompt: str,
    generation_id: uuid.UUID | None = None,
    negative_prompt: str | None = None,
    model: str | None = None,
    seed: int | None = None,
) -> None:
    """Insert the image's row; nothing when the id exists (a redelivery, a repeated request)."""
    await conn.execute(
        pg_insert(images)
        .values(
            id=image_id,
            user_id=user_id,
            generation_id=generation_id,
            filename=filename,
            content_key=files.original.key,
            thumbnail_key=files.thumbnail.key if files.thumbnail else None,
            file_size=files.original.size,
            width=files.original.width,
            height=files.original.height,
            format=files.format,
            sha256=files.original.sha256,
            prompt=prompt,
            negative_prompt=negative_prompt,
            model=model,
            seed=seed,
            blurhash=files.original.blurhash,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


# ------------------------------------------------------------------------------------ views


# A view's fields are the image columns of the same names; a detail adds the tags and the
# author (from profiles). Read by name, so a view and its columns cannot drift apart.
_NOT_COLUMNS = ("tags", "author_username", "author_avatar_url")
_DETAIL_FIELDS = tuple(name for name in c.ImageDetail.model_fields if name not in _NOT_COLUMNS)


def image_view(row: Any) -> c.ImageView:
    return c.ImageView.model_validate(row, from_attributes=True)


def image_detail(row: Any, tag_names: tuple[str, ...]) -> c.ImageDetail:
    """``row``: of :func:`detail_select` (the image and its author's profile)."""
    return c.ImageDetail(
        **{name: getattr(row, name) for name in _DETAIL_FIELDS},
        tags=tag_names,
        author_username=row.username,
        author_avatar_url=row.avatar_url,
    )


def detail_select() -> Select[Any]:
    """The image columns and the author's name and avatar, for :func:`details`."""
    return select(*IMAGE_COLUMNS, profiles.c.username, profiles.c.avatar_url).select_from(
        images.outerjoin(profiles, profiles.c.id == images.c.user_id)
    )


async def tag_names(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, ...]]:
    """The tag names of each image, sorted; an image without tags is absent."""
    if not ids:
        return {}
    rows = (
        await conn.execute(
            select(image_tags.c.image_id, func.array_agg(aggregate_order_by(tags.c.name, tags.c.name)))
            .select_from(image_tags.join(tags, tags.c.id == image_tags.c.tag_id))
            .where(image_tags.c.image_id.in_(ids))
            .group_by(image_tags.c.image_id)
        )
    ).all()
    return {row[0]: tuple(row[1]) for row in rows}


async def details(conn: AsyncConnection, rows: Sequence[Any]) -> tuple[c.ImageDetail, ...]:
    """Rows of :func:`detail_select` with their tags (one more query for the whole page)."""
    tag_map = await tag_names(conn, [row.id for row in rows])
    return tuple(image_detail(row, tag_map.get(row.id, ())) for row in rows)


def visible_to(viewer_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The viewer's own images and public ones; public ones only for an anonymous viewer."""
    if viewer_id is None:
        return images.c.is_public
    return or_(images.c.user_id == viewer_id, images.c.is_public)


async def load_detail(
    conn: AsyncConnection, image_id: uuid.UUID, viewer_id: uuid.UUID | None
) -> c.ImageDetail:
    row = (await conn.execute(detail_select().where(images.c.id == image_id, visible_to(viewer_id)))).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")
    return (await details(conn, [row]))[0]


async def require_own(conn: AsyncConnection, image_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Lock the owner's image for the rest of the transaction; NOT_FOUND for anyone else's."""
    found = (
        await conn.execute(
            select(images.c.id).where(images.c.id == image_id, images.c.user_id == user_id).with_for_update()
        )
    ).first()
    if found is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")


# ------------------------------------------------------------------------------------ queries


async def get_image(engine: AsyncEngine, req: c.GetImageRequest) -> c.ImageReply:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(*IMAGE_COLUMNS).where(images.c.id == req.image_id, visible_to(req.viewer_id))
            )
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")
    return c.ImageReply(image=image_view(row))


async def get_image_detail(engine: AsyncEngine, req: c.GetImageDetailRequest) -> c.ImageDetailReply:
    async with engine.connect() as conn:
        return c.ImageDetailReply(image=await load_detail(conn, req.image_id, req.viewer_id))


async def update_image(engine: AsyncEngine, req: c.UpdateImageRequest) -> c.ImageDetailReply:
    values: dict[str, Any] = {}
    if req.is_public is not None:
        values["is_public"] = req.is_public
    if req.is_favorite is not None:
        values["is_favorite"] = req.is_favorite
    if req.clear_rating:
        values["rating"] = None
    elif req.rating is not None:
        values["rating"] = req.rating
    if req.archived is not None:
        values["archived_at"] = func.coalesce(images.c.archived_at, func.now()) if req.archived else None
    async with engine.begin() as conn:
        if values:
            done = (
                await conn.execute(
                    update(images)
                    .where(images.c.id == req.image_id, images.c.user_id == req.user_id)
                    .values(**values)
                    .returning(images.c.id)
                )
            ).first()
            if done is None:
                raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")
        else:
            await require_own(conn, req.image_id, req.user_id)
        return c.ImageDetailReply(image=await load_detail(conn, req.image_id, req.user_id))


async def bulk_images(engine: AsyncEngine, req: c.BulkImagesRequest) -> tuple[c.BulkImagesReply, bool]:
    """Returns the reply and whether an outbox message was written (wake the relay)."""
    ids = list(dict.fromkeys(req.ids))
    own = and_(images.c.id.in_(ids), images.c.user_id == req.user_id)
    queued = False
    async with engine.begin() as conn:
        if req.action == "delete":
            rows = (
                await conn.execute(
                    delete(images)
                    .where(own)
                    .returning(images.c.id, images.c.content_key, images.c.thumbnail_key)
                )
            ).all()
            keys = tuple(key for row in rows for key in (row.content_key, row.thumbnail_key) if key)
            if keys:
                await enqueue(conn, c.DELETE_OBJECTS, c.DeleteObjectsCommand(keys=keys))
                queued = True
            affected = [row.id for row in rows]
        else:
            archived_at = func.coalesce(images.c.archived_at, func.now()) if req.action == "archive" else None
            result = await conn.execute(
                update(images).where(own).values(archived_at=archived_at).returning(images.c.id)
            )
            affected = list(result.scalars().all())
    order = {image_id: index for index, image_id in enumerate(ids)}
    return c.BulkImagesReply(affected=tuple(sorted(affected, key=order.__getitem__))), queued


async def record_upload(engine: AsyncEngine, req: c.RecordUploadRequest) -> c.ImageReply:
    """The record of an uploaded image ("Uploaded: <name>"); idempotent on the image id."""
    files = StoredFiles.of(req.objects)
    if files is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "an upload needs an original object", field="objects")
    async with engine.begin() as conn:
        await insert_image(
            conn,
            files,
            image_id=req.image_id,
            user_id=req.user_id,
            filename=req.filename[:255],
            prompt=f"Uploaded: {req.filename}",
        )
        row = (
            await conn.execute(
                select(*IMAGE_COLUMNS).where(images.c.id == req.image_id, images.c.user_id == req.user_id)
            )
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.CONFLICT, "image id already used", field="image_id")
    return c.ImageReply(image=image_view(row))


# ------------------------------------------------------------------------------------ commands


async def record_image(engine: AsyncEngine, bus: Bus, cmd: c.RecordImageCommand) -> None:
    """Insert the generated image (no-op when it exists: redelivery), then announce it.

    The announcement is repeated on redelivery on purpose: if we crashed between insert and
    publish, this is how it gets out. Its id is derived from the image id, so JetStream drops
    the copy inside its window and the orchestrator's transition is idempotent after it.
    """
    files = StoredFiles.of(cmd.objects)
    if files is None:
        raise Reject("record_image without an original object")
    async with engine.begin() as conn:
        await insert_image(
            conn,
            files,
            image_id=cmd.image_id,
            user_id=cmd.user_id,
            generation_id=cmd.generation_id,
            filename=f"{cmd.generation_id}.{files.format}",
            prompt=cmd.prompt,
            negative_prompt=cmd.negative_prompt,
            model=cmd.model,
            seed=cmd.seed,
        )
    await bus.publish(
        c.IMAGE_CREATED,
        c.ImageCreatedEvent(image_id=cmd.image_id, generation_id=cmd.generation_id, user_id=cmd.user_id),
        message_id=derived_id("image.created", cmd.image_id),
        generation_id=cmd.generation_id,
    )


async def count_download(engine: AsyncEngine, cmd: c.ImageDownloadedCommand) -> None:
    """Count one download (explore's "popular" sort is likes + downloads)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(images)
            .where(images.c.id == cmd.image_id)
            .values(download_count=images.c.download_count + 1)
        )


# ------------------------------------------------------------------------------------ keys


async def referenced_keys(engine: AsyncEngine, req: c.ReferencedKeysRequest) -> c.ReferencedKeysReply:
    """The asked keys some image points at (content or thumbnail); for media's sweep, which
    deletes the objects no image needs. Uses the indexes on both keys."""
    asked = list(dict.fromkeys(req.keys))
    if not asked:
        return c.ReferencedKeysReply(keys=())
    async with engine.connect() as conn:
        content = (
            await conn.execute(select(images.c.content_key).where(images.c.content_key.in_(asked)))
        ).scalars()
        found = set(content)
        thumbs = await conn.execute(select(images.c.thumbnail_key).where(images.c.thumbnail_key.in_(asked)))
        found.update(key for key in thumbs.scalars() if key is not None)
    return c.ReferencedKeysReply(keys=tuple(key for key in asked if key in found))
