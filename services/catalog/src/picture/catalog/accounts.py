"""Account deletion: the catalog deletes everything of the user it owns.

The user's images (their tags and others' likes on them go with them), the likes the user gave
others' images (those images' counts go down), their template uses, templates and profile.
Shared tag names stay: they belong to nobody. The stored files are media's: it deletes them on
the same event. Handling the event twice deletes nothing more.
"""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog.tables import image_likes, images, profiles, prompt_templates, template_uses
from picture.common import contracts as c


async def delete_account(engine: AsyncEngine, event: c.AccountDeletedEvent) -> None:
    user = event.user_id
    async with engine.begin() as conn:
        liked = (
            (
                await conn.execute(
                    delete(image_likes).where(image_likes.c.user_id == user).returning(image_likes.c.image_id)
                )
            )
            .scalars()
            .all()
        )
        if liked:
            await conn.execute(
                update(images)
                .where(images.c.id.in_(liked), images.c.user_id != user)
                .values(like_count=images.c.like_count - 1)
            )
        await conn.execute(delete(images).where(images.c.user_id == user))
        await conn.execute(delete(template_uses).where(template_uses.c.user_id == user))
        await conn.execute(delete(prompt_templates).where(prompt_templates.c.user_id == user))
        await conn.execute(delete(profiles).where(profiles.c.id == user))
