"""The Python SDK (picture.client) against the real running system."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.client import AsyncPicture, ConflictError, NotFoundError, Picture, RateLimitError
from picture.devstack.stack import Stack
from tests.integration.conftest import set_limits


@pytest.fixture
async def sdk(stack: Stack, token: str) -> AsyncPicture:
    return AsyncPicture(token, base_url=stack.gateway_url)


async def test_generate_follows_the_stream_and_downloads_a_webp_of_the_size(
    sdk: AsyncPicture, tmp_path: Path
) -> None:
    seen: list[str] = []
    async with sdk:
        generation = await sdk.generate(
            "a lighthouse at dusk",
            model="flux-schnell",
            width=640,
            height=384,
            seed=7,
            on_update=lambda g: seen.append(g.status.value),
        )
        assert generation.status.value == "completed", generation.error_message
        path = await sdk.download(generation, tmp_path / "lighthouse.webp")
    assert seen[-1] == "completed" and len(seen) >= 2  # the submit answer, then live updates
    with Image.open(path) as image:
        assert image.format == "WEBP"
        assert image.size == (1344, 768) == (generation.image.width, generation.image.height)


def test_sync_client_cancels_a_running_generation(stack: Stack, token: str) -> None:
    with Picture(token, base_url=stack.gateway_url) as client:
        generation = client.submit("[sim:slow=20000] a slow dream", model="flux-schnell")
        cancelled = client.cancel(str(generation.id))
        assert cancelled.status.value == "cancelled"
        assert client.wait(str(generation.id), timeout=30).status.value == "cancelled"
        with pytest.raises(ConflictError) as again:
            client.cancel(str(generation.id))
        assert again.value.status == 409 and again.value.type
        with pytest.raises(NotFoundError):
            client.generation(str(uuid.uuid4()))


async def test_batch_waits_for_every_item(sdk: AsyncPicture) -> None:
    async with sdk:
        (batch,) = await sdk.batch(
            ["a red fox", "a blue whale", "a green frog"], model="flux-schnell", width=256, height=256
        )
    assert batch.status.value == "completed"
    assert batch.total == 3 and batch.completed == 3
    assert all(item.image is not None for item in batch.items)


async def test_quota_reached_is_a_rate_limit_error_with_the_reset(
    stack: Stack, db: AsyncEngine, token: str, user_id: uuid.UUID
) -> None:
    await set_limits(db, user_id, hourly_limit=1)
    async with AsyncPicture(token, base_url=stack.gateway_url) as client:
        await client.submit("one is allowed", model="flux-schnell")
        with pytest.raises(RateLimitError) as caught:
            await client.submit("two is not", model="flux-schnell")
        limits = await client.limits()
    assert caught.value.limit_reason == "hourly"
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 3600
    assert caught.value.reset is not None
    assert abs((caught.value.reset - limits.hourly_reset_at).total_seconds()) < 5
    assert limits.hourly_used == 1 and not limits.can_generate


async def test_upload_then_favorite_tag_and_find_it(sdk: AsyncPicture, tmp_path: Path) -> None:
    source = tmp_path / "square.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(source)
    async with sdk:
        uploaded = await sdk.upload(source)
        assert (uploaded.width, uploaded.height) == (96, 64)
        image_id = str(uploaded.id)
        assert (await sdk.update_image(image_id, is_favorite=True)).is_favorite
        tagged = await sdk.tag_image(image_id, "sdk-upload")
        assert "sdk-upload" in tagged.tags
        favorites = await sdk.images(favorite=True, tags=["sdk-upload"])
        back = await sdk.download(image_id, tmp_path / "back")
    assert [str(i.id) for i in favorites.data] == [image_id]
    with Image.open(back) as image:
        assert image.size == (96, 64)
