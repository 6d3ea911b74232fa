"""A catalog seeded by the old revision 0002 (values now known wrong) reaches the seed file's
values through revision 0008, except where an admin changed a value since."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from picture.catalog.seed import load_seed
from picture.common.migrations import upgrade
from picture.devstack.stack import Stack

FLUX_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]


async def test_revision_0008_corrects_old_seeded_values_and_keeps_admin_edits(stack: Stack) -> None:
    name = f"seed_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(stack.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = stack.database_url.rsplit("/", 1)[0] + f"/{name}"
    engine = create_async_engine(url)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, upgrade, "picture.catalog:migrations", url, "0007")
        async with engine.begin() as conn:  # as the old revision 0002 seeded them; one admin edit
            await conn.execute(
                text("UPDATE catalog.models SET default_guidance_scale = 3.5 WHERE name = 'flux-schnell'")
            )
            await conn.execute(
                text("UPDATE catalog.models SET supports_img2img = true WHERE name = 'sdxl-lightning'")
            )
            await conn.execute(
                text(
                    "UPDATE catalog.models SET default_steps = 20, supported_aspect_ratios = :ratios "
                    "WHERE name = 'stable-diffusion-3.5'"
                ),
                {"ratios": FLUX_RATIOS},
            )
        await loop.run_in_executor(None, upgrade, "picture.catalog:migrations", url, "head")
        async with engine.connect() as conn:
            rows = {
                r.name: r
                for r in await conn.execute(
                    text(
                        "SELECT name, default_guidance_scale, supports_img2img, default_steps, "
                        "supported_aspect_ratios, supports_steps, guidance_max, max_seed FROM catalog.models"
                    )
                )
            }
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}"'))
        await admin.dispose()
    seed = {m["name"]: m for m in load_seed()}
    assert set(rows) == set(seed)
    assert rows["flux-schnell"].default_guidance_scale is None
    assert rows["sdxl-lightning"].supports_img2img is False
    assert rows["stable-diffusion-3.5"].default_steps == 20  # the admin's edit stays
    assert (
        rows["stable-diffusion-3.5"].supported_aspect_ratios
        == seed["stable-diffusion-3.5"]["supported_aspect_ratios"]
    )
    for model, row in rows.items():  # the new columns come from the seed file
        assert (row.supports_steps, row.guidance_max, row.max_seed) == (
            seed[model]["supports_steps"],
            seed[model]["guidance_max"],
            seed[model]["max_seed"],
        ), model
