"""Imports of the old product's records on a real PostgreSQL: ids, owners, timestamps and flags
kept; an image's tags and likes written with it; a second import changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import gallery, imports, profiles, templates
from picture.common import contracts as c

OLD = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


def objects(user: uuid.UUID, generation: uuid.UUID) -> tuple[c.StoredObject, ...]:
    common = {"content_type": "image/webp", "sha256": "a" * 64}
    return (
        c.StoredObject(
            key=f"{user}/{generation}/image.webp",
            role="original",
            size=900,
            width=64,
            height=48,
            blurhash="LEHV6nWB2yk8",
            **common,
        ),
        c.StoredObject(
            key=f"{user}/{generation}/thumb.webp", role="thumbnail", size=90, width=32, height=24, **common
        ),
    )


async def test_an_image_keeps_its_flags_tags_and_likes_and_imports_once(engine: AsyncEngine) -> None:
    owner, fan, image, generation = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tag = f"Old Tag {uuid.uuid4().hex[:8]}"
    request = c.ImportImageRequest(
        image_id=image,
        user_id=owner,
        generation_id=generation,
        filename=f"{generation}.webp",
        objects=objects(owner, generation),
        prompt="a red fox in the snow",
        model="flux-schnell",
        seed=0,
        is_public=True,
        is_favorite=True,
        rating=4,
        download_count=7,
        created_at=OLD,
        tags=(tag, tag.upper()),
        liked_by=(fan, owner, fan),
    )
    assert await imports.import_image(engine, request) == c.ImportReply(created=True)
    again = request.model_copy(update={"is_favorite": False, "liked_by": ()})
    assert await imports.import_image(engine, again) == c.ImportReply(created=False)

    page = await gallery.list_images(engine, c.ListImagesRequest(user_id=owner))
    (shown,) = page.images
    assert (shown.id, shown.generation_id, shown.created_at) == (image, generation, OLD)
    assert (shown.is_public, shown.is_favorite, shown.rating, shown.seed) == (True, True, 4, 0)
    assert (shown.download_count, shown.like_count) == (7, 2)
    assert shown.tags == (" ".join(tag.split()).lower(),)


async def test_profiles_and_templates_keep_ids_and_times(engine: AsyncEngine) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    name = f"old_{uuid.uuid4().hex[:8]}"
    first = c.ImportProfileRequest(
        user_id=user, username=name, email="a@example.org", created_at=OLD, updated_at=OLD
    )
    assert (await imports.import_profile(engine, first)).created
    assert not (await imports.import_profile(engine, first)).created
    # The same name held by someone else: the second profile is kept without it.
    clash = first.model_copy(update={"user_id": other, "username": name.upper()})
    assert (await imports.import_profile(engine, clash)).created
    # Signed in to the new system before the import: the bare profile gets the old one's data.
    early = uuid.uuid4()
    await profiles.get_profile(engine, c.GetProfileRequest(user_id=early))
    late = first.model_copy(update={"user_id": early, "username": f"{name}_2"})
    assert (await imports.import_profile(engine, late)).created
    assert not (await imports.import_profile(engine, late)).created
    filled = (await profiles.get_profile(engine, c.GetProfileRequest(user_id=early))).profile
    assert (filled.username, filled.email, filled.created_at) == (f"{name}_2", "a@example.org", OLD)
    mine = (await profiles.get_profile(engine, c.GetProfileRequest(user_id=user))).profile
    theirs = (await profiles.get_profile(engine, c.GetProfileRequest(user_id=other))).profile
    assert (mine.username, mine.created_at, theirs.username) == (name, OLD, None)

    template = c.TemplateView(
        id=uuid.uuid4(),
        user_id=user,
        name="Portrait",
        prompt="a portrait",
        negative_prompt=None,
        category="people",
        is_public=False,
        use_count=3,
        created_at=OLD,
        updated_at=OLD,
    )
    assert (await imports.import_template(engine, c.ImportTemplateRequest(template=template))).created
    assert not (await imports.import_template(engine, c.ImportTemplateRequest(template=template))).created
    got = await templates.get_template(engine, c.TemplateRequest(user_id=user, template_id=template.id))
    assert got.template == template


async def test_tags_import_once_by_normalised_name(engine: AsyncEngine) -> None:
    name = f"Sky {uuid.uuid4().hex[:6]}"
    tag = c.ImportedTag(name=name, color="#FF0000")
    assert (await imports.import_tag(engine, c.ImportTagRequest(tag=tag, created_at=OLD))).created
    lower = c.ImportedTag(name=name.lower(), color="#00ff00")
    assert not (await imports.import_tag(engine, c.ImportTagRequest(tag=lower))).created
