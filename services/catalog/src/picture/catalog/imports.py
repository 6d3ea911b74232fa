"""Records of the old product, written by ``picture-import`` with their own ids, owners and
timestamps: profiles, shared tags, images (with their tags and likes) and prompt templates.

Each query is idempotent by id: a record that exists already is left as it is and the reply
says ``created`` False, so a second import, or one resumed after a crash, writes nothing twice.
A profile made on first sight in the new system (the user signed in before the import) is the
one exception: the old profile fills in what it lacks.
An image's tags and likes go in the same transaction as its row: an image is either imported
whole or not at all.
"""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from picture.catalog.images import StoredFiles
from picture.catalog.tables import image_likes, image_tags, images, profiles, prompt_templates, tags
from picture.common import contracts as c
from picture.common.messaging import QueryFailed

DEFAULT_TAG_COLOR = "#6b7280"


def tag_name(name: str) -> str:
    """The catalog's form of a tag name: lowercased, spaces collapsed."""
    value = " ".join(name.split()).lower()
    if not value:
        raise QueryFailed(c.QueryErrorCode.INVALID, "tag name must not be blank", field="name")
    return value


async def import_profile(engine: AsyncEngine, req: c.ImportProfileRequest) -> c.ImportReply:
    async with engine.begin() as conn:
        username = req.username
        if username is not None:
            holder = (
                await conn.execute(
                    select(profiles.c.id).where(func.lower(profiles.c.username) == username.lower())
                )
            ).first()
            if holder is not None and holder.id != req.user_id:
                username = None
        statement = pg_insert(profiles).values(
            id=req.user_id,
            email=req.email,
            username=username,
            avatar_url=req.avatar_url,
            created_at=req.created_at,
            updated_at=req.updated_at,
        )
        new = statement.excluded
        # The user may have signed in to the new system first (a bare profile made on first
        # sight): the old profile fills in what it lacks, and its older creation time wins.
        written = (
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"],
                    set_={
                        "email": func.coalesce(profiles.c.email, new.email),
                        "username": func.coalesce(profiles.c.username, new.username),
                        "avatar_url": func.coalesce(profiles.c.avatar_url, new.avatar_url),
                        "created_at": func.least(profiles.c.created_at, new.created_at),
                    },
                    where=or_(
                        and_(profiles.c.email.is_(None), new.email.is_not(None)),
                        and_(profiles.c.username.is_(None), new.username.is_not(None)),
                        and_(profiles.c.avatar_url.is_(None), new.avatar_url.is_not(None)),
                        new.created_at < profiles.c.created_at,
                    ),
                ).returning(profiles.c.id)
            )
        ).first()
    return c.ImportReply(created=written is not None)


async def _tag_id(conn: AsyncConnection, name: str, color: str = DEFAULT_TAG_COLOR) -> int:
    await conn.execute(
        pg_insert(tags).values(name=name, color=color).on_conflict_do_nothing(index_elements=["name"])
    )
    return int((await conn.execute(select(tags.c.id).where(tags.c.name == name))).scalar_one())


async def import_tag(engine: AsyncEngine, req: c.ImportTagRequest) -> c.ImportReply:
    values: dict[str, object] = {"name": tag_name(req.tag.name), "color": req.tag.color.lower()}
    if req.created_at is not None:
        values["created_at"] = req.created_at
    async with engine.begin() as conn:
        written = (
            await conn.execute(
                pg_insert(tags)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(tags.c.id)
            )
        ).first()
    return c.ImportReply(created=written is not None)


async def import_image(engine: AsyncEngine, req: c.ImportImageRequest) -> c.ImportReply:
    files = StoredFiles.of(req.objects)
    if files is None:
        raise QueryFailed(c.QueryErrorCode.INVALID, "an image needs its original", field="objects")
    names = sorted({tag_name(name) for name in req.tags})
    likers = sorted(set(req.liked_by))
    async with engine.begin() as conn:
        written = (
            await conn.execute(
                pg_insert(images)
                .values(
                    id=req.image_id,
                    user_id=req.user_id,
                    generation_id=req.generation_id,
                    filename=req.filename,
                    content_key=files.original.key,
                    thumbnail_key=files.thumbnail.key if files.thumbnail else None,
                    file_size=files.original.size,
                    width=files.original.width,
                    height=files.original.height,
                    format=files.format,
                    sha256=files.original.sha256,
                    prompt=req.prompt,
                    negative_prompt=req.negative_prompt,
                    model=req.model,
                    seed=req.seed,
                    blurhash=files.original.blurhash,
                    is_public=req.is_public,
                    is_favorite=req.is_favorite,
                    rating=req.rating,
                    download_count=req.download_count,
                    archived_at=req.archived_at,
                    created_at=req.created_at,
                    like_count=len(likers),
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(images.c.id)
            )
        ).first()
        if written is None:
            return c.ImportReply(created=False)
        for name in names:
            await conn.execute(
                pg_insert(image_tags)
                .values(image_id=req.image_id, tag_id=await _tag_id(conn, name), user_id=req.user_id)
                .on_conflict_do_nothing()
            )
        if likers:
            await conn.execute(
                pg_insert(image_likes).on_conflict_do_nothing(),
                [{"image_id": req.image_id, "user_id": liker} for liker in likers],
            )
    return c.ImportReply(created=True)


async def import_template(engine: AsyncEngine, req: c.ImportTemplateRequest) -> c.ImportReply:
    template = req.template
    async with engine.begin() as conn:
        written = (
            await conn.execute(
                pg_insert(prompt_templates)
                .values(**template.model_dump())
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(prompt_templates.c.id)
            )
        ).first()
    return c.ImportReply(created=written is not None)
