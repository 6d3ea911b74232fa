"""Prompt templates on a real PostgreSQL: create, read (own and public), change and delete
(owner only), pages by scope and category, and use counts once per generation."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import templates
from picture.common import contracts as c
from picture.common.messaging import QueryFailed


async def create(engine: AsyncEngine, user: uuid.UUID, **fields: object) -> c.TemplateView:
    values = {"name": "Portrait", "prompt": "a portrait, soft light", **fields}
    req = c.TemplateRequest(user_id=user, fields=c.TemplateFields.model_validate(values))
    return (await templates.create_template(engine, req)).template


async def get(engine: AsyncEngine, user: uuid.UUID, template_id: uuid.UUID) -> c.TemplateView:
    return (
        await templates.get_template(engine, c.TemplateRequest(user_id=user, template_id=template_id))
    ).template


async def not_found(call: object) -> None:
    with pytest.raises(QueryFailed) as failed:
        await call  # type: ignore[misc]
    assert failed.value.code is c.QueryErrorCode.NOT_FOUND


async def test_create_needs_a_name_and_a_prompt(engine: AsyncEngine) -> None:
    user = uuid.uuid4()
    made = await create(engine, user, negative_prompt="blur", category="people")
    assert (made.user_id, made.name, made.prompt, made.negative_prompt, made.category) == (
        user,
        "Portrait",
        "a portrait, soft light",
        "blur",
        "people",
    )
    assert (made.is_public, made.use_count) == (False, 0)
    assert await get(engine, user, made.id) == made
    for missing in ("name", "prompt"):
        fields = c.TemplateFields.model_validate({"name": "n", "prompt": "p"} | {missing: None})
        with pytest.raises(QueryFailed) as invalid:
            await templates.create_template(engine, c.TemplateRequest(user_id=user, fields=fields))
        assert (invalid.value.code, invalid.value.field) == (c.QueryErrorCode.INVALID, missing)
    with pytest.raises(QueryFailed) as no_id:
        await templates.get_template(engine, c.TemplateRequest(user_id=user))
    assert (no_id.value.code, no_id.value.field) == (c.QueryErrorCode.INVALID, "template_id")


async def test_only_the_owner_changes_or_deletes_and_others_see_public_ones(engine: AsyncEngine) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    private = await create(engine, owner)
    public = await create(engine, owner, is_public=True)
    await not_found(templates.get_template(engine, c.TemplateRequest(user_id=other, template_id=private.id)))
    assert await get(engine, other, public.id) == public
    change = c.TemplateFields(name="Mine now")
    for template in (private, public):
        await not_found(
            templates.update_template(
                engine, c.TemplateRequest(user_id=other, template_id=template.id, fields=change)
            )
        )
        await not_found(
            templates.delete_template(engine, c.TemplateRequest(user_id=other, template_id=template.id))
        )
        assert await get(engine, owner, template.id) == template

    updated = (
        await templates.update_template(
            engine,
            c.TemplateRequest(
                user_id=owner,
                template_id=public.id,
                fields=c.TemplateFields(name="Renamed", is_public=False, negative_prompt="x"),
            ),
        )
    ).template
    assert (updated.name, updated.prompt, updated.is_public, updated.negative_prompt) == (
        "Renamed",
        public.prompt,
        False,
        "x",
    )
    assert updated.updated_at >= public.updated_at
    await not_found(templates.get_template(engine, c.TemplateRequest(user_id=other, template_id=public.id)))
    cleared = (
        await templates.update_template(
            engine,
            c.TemplateRequest(
                user_id=owner, template_id=public.id, fields=c.TemplateFields(clear=("negative_prompt",))
            ),
        )
    ).template
    assert (cleared.name, cleared.negative_prompt) == ("Renamed", None)

    deleted = await templates.delete_template(
        engine, c.TemplateRequest(user_id=owner, template_id=private.id)
    )
    assert deleted.template == private
    await not_found(templates.get_template(engine, c.TemplateRequest(user_id=owner, template_id=private.id)))
    await not_found(
        templates.delete_template(engine, c.TemplateRequest(user_id=owner, template_id=private.id))
    )


async def test_pages_by_scope_and_category(engine: AsyncEngine) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    category = f"cat-{uuid.uuid4().hex[:8]}"
    own = [await create(engine, owner, category=category) for _ in range(3)]
    theirs_public = await create(engine, other, category=category, is_public=True)
    await create(engine, other, category=category)  # private to the other user

    async def pages(scope: str, user: uuid.UUID = owner) -> list[list[uuid.UUID]]:
        req = c.ListTemplatesRequest(user_id=user, scope=scope, category=category, limit=2)  # type: ignore[arg-type]
        out: list[list[uuid.UUID]] = []
        while True:
            reply = await templates.list_templates(engine, req)
            out.append([t.id for t in reply.templates])
            if reply.next_cursor is None:
                return out
            req = req.model_copy(update={"cursor": reply.next_cursor})

    newest_first = [theirs_public.id, *(t.id for t in reversed(own))]  # made in this order
    assert await pages("all") == [newest_first[:2], newest_first[2:]]
    assert await pages("own") == [newest_first[1:3], newest_first[3:]]
    assert await pages("public") == [[theirs_public.id]]
    assert await pages("public", uuid.uuid4()) == [[theirs_public.id]]
    reply = await templates.list_templates(
        engine, c.ListTemplatesRequest(user_id=owner, category=f"{category}-none")
    )
    assert reply.templates == ()


async def test_a_use_counts_once_per_generation_and_only_for_a_visible_template(engine: AsyncEngine) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    private = await create(engine, owner)
    public = await create(engine, owner, is_public=True)
    generation = uuid.uuid4()
    for _ in range(3):  # redeliveries of one command
        await templates.template_used(
            engine, c.TemplateUsedCommand(template_id=private.id, generation_id=generation, user_id=owner)
        )
    await templates.template_used(
        engine, c.TemplateUsedCommand(template_id=private.id, generation_id=uuid.uuid4(), user_id=owner)
    )
    assert (await get(engine, owner, private.id)).use_count == 2
    await templates.template_used(  # someone else's private template: not counted
        engine, c.TemplateUsedCommand(template_id=private.id, generation_id=uuid.uuid4(), user_id=other)
    )
    assert (await get(engine, owner, private.id)).use_count == 2
    await templates.template_used(
        engine, c.TemplateUsedCommand(template_id=public.id, generation_id=uuid.uuid4(), user_id=other)
    )
    assert (await get(engine, owner, public.id)).use_count == 1
    await templates.template_used(  # deleted since: nothing to count, no error
        engine, c.TemplateUsedCommand(template_id=uuid.uuid4(), generation_id=uuid.uuid4(), user_id=owner)
    )
