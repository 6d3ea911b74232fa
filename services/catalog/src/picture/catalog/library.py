"""The gallery, explore, tags, likes, profiles, prompt templates and admin model edits.

Every function takes the engine and a contract message and returns a contract reply (or raises
:class:`QueryFailed`); the app wires them to NATS queries, the benchmark calls them directly.

Visibility: an image is visible to its owner, and to everyone when public; anything else is
NOT_FOUND (never "forbidden": that would confirm the id exists). Changes are owner-only.
Pagination is keyset (never OFFSET) on the sort key plus ``id``, so equal timestamps keep a
stable order and deleting rows between pages neither repeats nor skips the others.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.catalog.outbox import enqueue
from picture.catalog.queries import model_from_row
from picture.catalog.tables import (
    image_likes,
    image_tags,
    images,
    models,
    profiles,
    prompt_templates,
    tags,
    template_uses,
)
from picture.common import contracts as c
from picture.common.ids import uuid7
from picture.common.messaging import QueryFailed

IMAGE_COLUMNS = tuple(col for col in images.c if col.name != "search")
DEFAULT_TAG_COLOR = "#6b7280"


# ------------------------------------------------------------------------------------ cursors


def encode_cursor(*parts: object) -> str:
    values = [
        p.isoformat() if isinstance(p, datetime) else str(p) if isinstance(p, uuid.UUID) else p for p in parts
    ]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong shape")
        out: list[Any] = []
        for value, kind in zip(raw, kinds, strict=True):
            if kind is datetime:
                out.append(datetime.fromisoformat(value))
            elif kind is uuid.UUID:
                out.append(uuid.UUID(value))
            elif kind is int and isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
            else:
                raise ValueError("wrong value")
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise QueryFailed(c.QueryErrorCode.INVALID, "invalid cursor", field="cursor") from exc
    return out


# ------------------------------------------------------------------------------------ images


def _image_select() -> Select[Any]:
    return select(*IMAGE_COLUMNS, profiles.c.username, profiles.c.avatar_url).select_from(
        images.outerjoin(profiles, profiles.c.id == images.c.user_id)
    )


async def _tags_of(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str, ...]]:
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


def _detail(row: Any, tag_names: tuple[str, ...]) -> c.ImageDetail:
    return c.ImageDetail(
        id=row.id,
        user_id=row.user_id,
        generation_id=row.generation_id,
        width=row.width,
        height=row.height,
        format=row.format,
        file_size=row.file_size,
        content_key=row.content_key,
        thumbnail_key=row.thumbnail_key,
        prompt=row.prompt,
        negative_prompt=row.negative_prompt,
        model=row.model,
        seed=row.seed,
        is_public=row.is_public,
        is_favorite=row.is_favorite,
        rating=row.rating,
        download_count=row.download_count,
        like_count=row.like_count,
        archived_at=row.archived_at,
        created_at=row.created_at,
        tags=tag_names,
        author_username=row.username,
        author_avatar_url=row.avatar_url,
    )


async def _details(conn: AsyncConnection, rows: Sequence[Any]) -> tuple[c.ImageDetail, ...]:
    tag_map = await _tags_of(conn, [row.id for row in rows])
    return tuple(_detail(row, tag_map.get(row.id, ())) for row in rows)


def _visible(viewer_id: uuid.UUID | None) -> ColumnElement[bool]:
    if viewer_id is None:
        return images.c.is_public
    return or_(images.c.user_id == viewer_id, images.c.is_public)


async def _load_detail(
    conn: AsyncConnection, image_id: uuid.UUID, viewer_id: uuid.UUID | None
) -> c.ImageDetail:
    row = (await conn.execute(_image_select().where(images.c.id == image_id, _visible(viewer_id)))).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")
    return (await _details(conn, [row]))[0]


async def _require_own(conn: AsyncConnection, image_id: uuid.UUID, user_id: uuid.UUID) -> None:
    found = (
        await conn.execute(
            select(images.c.id).where(images.c.id == image_id, images.c.user_id == user_id).with_for_update()
        )
    ).first()
    if found is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")


def normalize_tag(name: str) -> str:
    value = " ".join(name.split()).lower()
    if not value:
        raise QueryFailed(c.QueryErrorCode.INVALID, "tag name must not be blank", field="name")
    return value


async def list_images(engine: AsyncEngine, req: c.ListImagesRequest) -> c.ImageListReply:
    query = _image_select().where(images.c.user_id == req.user_id)
    query = query.where(images.c.archived_at.is_not(None) if req.archived else images.c.archived_at.is_(None))
    if req.favorite is not None:
        query = query.where(images.c.is_favorite.is_(req.favorite))
    if req.model is not None:
        query = query.where(images.c.model == req.model)
    if req.created_after is not None:
        query = query.where(images.c.created_at >= req.created_after)
    if req.created_before is not None:
        query = query.where(images.c.created_at < req.created_before)
    if req.cursor is not None:
        at, last_id = decode_cursor(req.cursor, (datetime, uuid.UUID))
        query = query.where(tuple_(images.c.created_at, images.c.id) < tuple_(literal(at), literal(last_id)))
    query = query.order_by(images.c.created_at.desc(), images.c.id.desc()).limit(req.limit + 1)
    async with engine.connect() as conn:
        if req.tags:
            names = {normalize_tag(name) for name in req.tags}
            tag_ids = (await conn.execute(select(tags.c.id).where(tags.c.name.in_(names)))).scalars().all()
            if len(tag_ids) < len(names):
                return c.ImageListReply(images=())  # an unknown tag: nothing carries every one
            # The owner's rows of these tags (ix_image_tags_owner): a few short index ranges.
            carrying = (
                select(image_tags.c.image_id)
                .where(image_tags.c.user_id == req.user_id, image_tags.c.tag_id.in_(tag_ids))
                .group_by(image_tags.c.image_id)
                .having(func.count() == len(tag_ids))
            )
            query = query.where(images.c.id.in_(carrying))
        rows = (await conn.execute(query)).all()
        page = await _details(conn, rows[: req.limit])
    next_cursor = None
    if len(rows) > req.limit:
        last = page[-1]
        next_cursor = encode_cursor(last.created_at, last.id)
    return c.ImageListReply(images=page, next_cursor=next_cursor)


async def explore(engine: AsyncEngine, req: c.ExploreRequest) -> c.ImageListReply:
    def page_of(t: Any) -> list[ColumnElement[bool]]:
        """Public, non-archived, after the cursor, matching the search: on table (alias) ``t``."""
        where: list[ColumnElement[bool]] = [t.c.is_public, t.c.archived_at.is_(None)]
        if req.cursor is not None and req.sort == "popular":
            pop, at, last_id = decode_cursor(req.cursor, (int, datetime, uuid.UUID))
            after = tuple_(literal(pop), literal(at), literal(last_id))
            where.append(tuple_(t.c.popularity, t.c.created_at, t.c.id) < after)
        elif req.cursor is not None:
            at, last_id = decode_cursor(req.cursor, (datetime, uuid.UUID))
            where.append(tuple_(t.c.created_at, t.c.id) < tuple_(literal(at), literal(last_id)))
        if req.q is not None and req.q.strip():
            where.append(t.c.search.op("@@")(func.websearch_to_tsquery("english", req.q)))
        return where

    def order_of(t: Any) -> list[Any]:
        keys = [t.c.created_at.desc(), t.c.id.desc()]
        return [t.c.popularity.desc(), *keys] if req.sort == "popular" else keys

    if req.q is not None and req.q.strip():
        # Find the page's ids first (an index-only walk of ix_images_explore_recent_search when
        # sorted by recency; the GIN index for rare words), then fetch those rows by key.
        hit = images.alias("hit")
        ids = select(hit.c.id).where(*page_of(hit)).order_by(*order_of(hit)).limit(req.limit + 1)
        query = _image_select().where(images.c.id.in_(ids)).order_by(*order_of(images))
    else:
        query = _image_select().where(*page_of(images)).order_by(*order_of(images)).limit(req.limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        page = await _details(conn, rows[: req.limit])
    next_cursor = None
    if len(rows) > req.limit:
        last_row = rows[req.limit - 1]
        if req.sort == "popular":
            next_cursor = encode_cursor(last_row.popularity, last_row.created_at, last_row.id)
        else:
            next_cursor = encode_cursor(last_row.created_at, last_row.id)
    return c.ImageListReply(images=page, next_cursor=next_cursor)


async def get_image_detail(engine: AsyncEngine, req: c.GetImageDetailRequest) -> c.ImageDetailReply:
    async with engine.connect() as conn:
        return c.ImageDetailReply(image=await _load_detail(conn, req.image_id, req.viewer_id))


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
            await _require_own(conn, req.image_id, req.user_id)
        return c.ImageDetailReply(image=await _load_detail(conn, req.image_id, req.user_id))


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


# ------------------------------------------------------------------------------------ tags


def _tag_view(row: Any) -> c.TagView:
    return c.TagView(name=row.name, color=row.color, created_at=row.created_at)


async def _ensure_tag(conn: AsyncConnection, name: str, color: str) -> Any:
    await conn.execute(
        pg_insert(tags).values(name=name, color=color).on_conflict_do_nothing(index_elements=["name"])
    )
    return (await conn.execute(select(tags).where(tags.c.name == name))).one()


async def list_tags(engine: AsyncEngine, req: c.ListTagsRequest) -> c.TagListReply:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(tags).order_by(tags.c.name))).all()
    return c.TagListReply(tags=tuple(_tag_view(row) for row in rows))


async def create_tag(engine: AsyncEngine, req: c.TagRequest) -> c.TagReply:
    async with engine.begin() as conn:
        row = await _ensure_tag(conn, normalize_tag(req.name), req.color.lower())
    return c.TagReply(tag=_tag_view(row))


async def delete_tag(engine: AsyncEngine, req: c.TagRequest) -> c.TagReply:
    async with engine.begin() as conn:
        row = (
            await conn.execute(delete(tags).where(tags.c.name == normalize_tag(req.name)).returning(tags))
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "tag not found", field="name")
    return c.TagReply(tag=_tag_view(row))


async def image_tag(engine: AsyncEngine, req: c.ImageTagRequest) -> c.ImageDetailReply:
    name = normalize_tag(req.name)
    async with engine.begin() as conn:
        await _require_own(conn, req.image_id, req.user_id)
        if req.add:
            tag = await _ensure_tag(conn, name, DEFAULT_TAG_COLOR)
            await conn.execute(
                pg_insert(image_tags)
                .values(image_id=req.image_id, tag_id=tag.id, user_id=req.user_id)
                .on_conflict_do_nothing()
            )
        else:
            await conn.execute(
                delete(image_tags).where(
                    image_tags.c.image_id == req.image_id,
                    image_tags.c.tag_id == select(tags.c.id).where(tags.c.name == name).scalar_subquery(),
                )
            )
        return c.ImageDetailReply(image=await _load_detail(conn, req.image_id, req.user_id))


# ------------------------------------------------------------------------------------ likes


async def like(engine: AsyncEngine, req: c.LikeRequest) -> c.LikeReply:
    """Idempotent like/unlike; the count changes in the same transaction as the like row, and
    only when a row was really inserted or deleted (ON CONFLICT serialises concurrent likes)."""
    async with engine.begin() as conn:
        visible = (
            await conn.execute(select(images.c.id).where(images.c.id == req.image_id, _visible(req.user_id)))
        ).first()
        if visible is None:
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "image not found")
        if req.like:
            changed = (
                await conn.execute(
                    pg_insert(image_likes)
                    .values(image_id=req.image_id, user_id=req.user_id)
                    .on_conflict_do_nothing()
                    .returning(image_likes.c.image_id)
                )
            ).first()
            delta = 1
        else:
            changed = (
                await conn.execute(
                    delete(image_likes)
                    .where(image_likes.c.image_id == req.image_id, image_likes.c.user_id == req.user_id)
                    .returning(image_likes.c.image_id)
                )
            ).first()
            delta = -1
        if changed is not None:
            count = (
                await conn.execute(
                    update(images)
                    .where(images.c.id == req.image_id)
                    .values(like_count=images.c.like_count + delta)
                    .returning(images.c.like_count)
                )
            ).scalar_one()
        else:
            count = (
                await conn.execute(select(images.c.like_count).where(images.c.id == req.image_id))
            ).scalar_one()
    return c.LikeReply(image_id=req.image_id, liked=req.like, like_count=count)


# ------------------------------------------------------------------------------------ profiles


def _profile_view(row: Any) -> c.ProfileView:
    return c.ProfileView(
        id=row.id,
        email=row.email,
        username=row.username,
        avatar_url=row.avatar_url,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def ensure_profile(conn: AsyncConnection, user_id: uuid.UUID, email: str | None) -> None:
    statement = pg_insert(profiles).values(id=user_id, email=email)
    if email is None:
        await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
    else:
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_={"email": statement.excluded.email, "updated_at": func.now()},
                where=profiles.c.email.is_distinct_from(statement.excluded.email),
            )
        )


async def get_profile(engine: AsyncEngine, req: c.GetProfileRequest) -> c.ProfileReply:
    async with engine.begin() as conn:
        await ensure_profile(conn, req.user_id, req.email)
        row = (await conn.execute(select(profiles).where(profiles.c.id == req.user_id))).one()
    return c.ProfileReply(profile=_profile_view(row))


async def update_profile(engine: AsyncEngine, req: c.UpdateProfileRequest) -> c.ProfileReply:
    values: dict[str, Any] = {}
    if req.username is not None:
        values["username"] = req.username
    if req.clear_avatar:
        values["avatar_url"] = None
    elif req.avatar_url is not None:
        values["avatar_url"] = req.avatar_url
    try:
        async with engine.begin() as conn:
            await ensure_profile(conn, req.user_id, None)
            if values:
                await conn.execute(
                    update(profiles)
                    .where(profiles.c.id == req.user_id)
                    .values(**values, updated_at=func.now())
                )
            row = (await conn.execute(select(profiles).where(profiles.c.id == req.user_id))).one()
    except IntegrityError as exc:
        if "ux_profiles_username" in str(exc.orig):
            raise QueryFailed(c.QueryErrorCode.CONFLICT, "username is taken", field="username") from exc
        raise
    return c.ProfileReply(profile=_profile_view(row))


# ------------------------------------------------------------------------------------ templates


def _template_view(row: Any) -> c.TemplateView:
    return c.TemplateView(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prompt=row.prompt,
        negative_prompt=row.negative_prompt,
        category=row.category,
        is_public=row.is_public,
        use_count=row.use_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_templates(engine: AsyncEngine, req: c.ListTemplatesRequest) -> c.TemplateListReply:
    t = prompt_templates
    scope = {
        "all": or_(t.c.user_id == req.user_id, t.c.is_public),
        "own": t.c.user_id == req.user_id,
        "public": t.c.is_public,
    }[req.scope]
    query = select(t).where(scope)
    if req.category is not None:
        query = query.where(t.c.category == req.category)
    if req.cursor is not None:
        at, last_id = decode_cursor(req.cursor, (datetime, uuid.UUID))
        query = query.where(tuple_(t.c.created_at, t.c.id) < tuple_(literal(at), literal(last_id)))
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(req.limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    page = tuple(_template_view(row) for row in rows[: req.limit])
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > req.limit else None
    return c.TemplateListReply(templates=page, next_cursor=next_cursor)


async def create_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    f = req.fields
    if f.name is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "name is required", field="name")
    if f.prompt is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "prompt is required", field="prompt")
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                insert(prompt_templates)
                .values(
                    id=uuid7(),
                    user_id=req.user_id,
                    name=f.name,
                    prompt=f.prompt,
                    negative_prompt=f.negative_prompt,
                    category=f.category,
                    is_public=bool(f.is_public),
                )
                .returning(prompt_templates)
            )
        ).one()
    return c.TemplateReply(template=_template_view(row))


def _template_id(req: c.TemplateRequest) -> uuid.UUID:
    if req.template_id is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "template_id is required", field="template_id")
    return req.template_id


async def get_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    t = prompt_templates
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(t).where(t.c.id == _template_id(req), or_(t.c.user_id == req.user_id, t.c.is_public))
            )
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "prompt template not found")
    return c.TemplateReply(template=_template_view(row))


async def update_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    t = prompt_templates
    values: dict[str, Any] = req.fields.model_dump(exclude_none=True, exclude={"clear"})
    values.update(dict.fromkeys(req.fields.clear))
    own = and_(t.c.id == _template_id(req), t.c.user_id == req.user_id)
    async with engine.begin() as conn:
        row = (
            await conn.execute(update(t).where(own).values(**values, updated_at=func.now()).returning(t))
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "prompt template not found")
    return c.TemplateReply(template=_template_view(row))


async def delete_template(engine: AsyncEngine, req: c.TemplateRequest) -> c.TemplateReply:
    t = prompt_templates
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                delete(t).where(t.c.id == _template_id(req), t.c.user_id == req.user_id).returning(t)
            )
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.NOT_FOUND, "prompt template not found")
    return c.TemplateReply(template=_template_view(row))


async def template_used(engine: AsyncEngine, cmd: c.TemplateUsedCommand) -> bool:
    """Count a use once per (template, generation); False when the template is not visible."""
    t = prompt_templates
    async with engine.begin() as conn:
        usable = (
            await conn.execute(
                select(t.c.id).where(
                    t.c.id == cmd.template_id, or_(t.c.user_id == cmd.user_id, t.c.is_public)
                )
            )
        ).first()
        if usable is None:
            return False
        inserted = (
            await conn.execute(
                pg_insert(template_uses)
                .values(template_id=cmd.template_id, generation_id=cmd.generation_id, user_id=cmd.user_id)
                .on_conflict_do_nothing()
                .returning(template_uses.c.template_id)
            )
        ).first()
        if inserted is not None:
            await conn.execute(update(t).where(t.c.id == cmd.template_id).values(use_count=t.c.use_count + 1))
    return True


# ------------------------------------------------------------------------------------ models


async def update_model(engine: AsyncEngine, req: c.UpdateModelRequest) -> c.ModelReply:
    values = req.patch.model_dump(exclude_none=True)
    try:
        return await _update_model(engine, req.name, values)
    except IntegrityError as exc:
        if "strength_range" in str(exc.orig):
            raise QueryFailed(
                c.QueryErrorCode.INVALID,
                "strengths must satisfy strength_min <= default_strength <= strength_max",
                field="default_strength",
            ) from exc
        raise


async def _update_model(engine: AsyncEngine, name: str, values: dict[str, Any]) -> c.ModelReply:
    async with engine.begin() as conn:
        if values.get("is_default"):
            await conn.execute(
                update(models).where(models.c.name != name, models.c.is_default).values(is_default=False)
            )
        row = (
            await conn.execute(
                update(models)
                .where(models.c.name == name)
                .values(**values, updated_at=func.now())
                .returning(models)
            )
        ).first()
        if row is None:
            raise QueryFailed(c.QueryErrorCode.NOT_FOUND, f"unknown model {name!r}", field="name")
        if not row.min_width <= row.default_width <= row.max_width:
            raise QueryFailed(
                c.QueryErrorCode.INVALID, "default_width outside the model's range", field="default_width"
            )
        if not row.min_height <= row.default_height <= row.max_height:
            raise QueryFailed(
                c.QueryErrorCode.INVALID, "default_height outside the model's range", field="default_height"
            )
        if row.default_steps is not None and row.default_steps > row.max_steps:
            raise QueryFailed(
                c.QueryErrorCode.INVALID, "max_steps below the default steps", field="max_steps"
            )
    return c.ModelReply(model=model_from_row(row))


# ------------------------------------------------------------------------------------ uploads


async def record_upload(engine: AsyncEngine, req: c.RecordUploadRequest) -> c.ImageReply:
    """The record of an uploaded image ("Uploaded: <name>"); idempotent on the image id."""
    original = next((o for o in req.objects if o.role == "original"), None)
    if original is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "an upload needs an original object", field="objects")
    thumbnail = next((o for o in req.objects if o.role == "thumbnail"), None)
    fmt = original.content_type.split("/")[-1].split("+")[0]
    async with engine.begin() as conn:
        await conn.execute(
            pg_insert(images)
            .values(
                id=req.image_id,
                user_id=req.user_id,
                generation_id=None,
                filename=req.filename[:255],
                content_key=original.key,
                thumbnail_key=thumbnail.key if thumbnail else None,
                file_size=original.size,
                width=original.width,
                height=original.height,
                format=fmt,
                sha256=original.sha256,
                prompt=f"Uploaded: {req.filename}",
                blurhash=original.blurhash,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = (
            await conn.execute(
                select(*IMAGE_COLUMNS).where(images.c.id == req.image_id, images.c.user_id == req.user_id)
            )
        ).first()
    if row is None:
        raise QueryFailed(c.QueryErrorCode.CONFLICT, "image id already used", field="image_id")
    return c.ImageReply(
        image=c.ImageView(
            id=row.id,
            generation_id=row.generation_id,
            user_id=row.user_id,
            width=row.width,
            height=row.height,
            format=row.format,
            file_size=row.file_size,
            content_key=row.content_key,
            thumbnail_key=row.thumbnail_key,
            is_public=row.is_public,
            created_at=row.created_at,
        )
    )
