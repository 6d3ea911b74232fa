"""Image records on a real PostgreSQL: the one insert (generated and uploaded images, both
idempotent on the id), visibility, the owner's changes, bulk actions and their outbox message,
download counts; record_image's announcement on a real NATS (deduplicated on redelivery)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.catalog import images, profiles, tags
from picture.catalog.tables import images as image_rows
from picture.catalog.tables import outbox
from picture.common import contracts as c
from picture.common.messaging import Bus, QueryFailed, Reject
from picture.devstack.infra import NatsServer
from picture.devstack.servers import running_nats
from services.catalog.tests.conftest import AddImage


def stored(role: str, key: str, content_type: str = "image/webp") -> c.StoredObject:
    return c.StoredObject(
        key=key, role=role, content_type=content_type, size=123, width=640, height=480, sha256="a" * 64
    )


def upload(user_id: uuid.UUID, *objects: c.StoredObject, name: str = "cat.webp") -> c.RecordUploadRequest:
    return c.RecordUploadRequest(image_id=uuid.uuid4(), user_id=user_id, filename=name, objects=objects)


async def column(engine: AsyncEngine, image_id: uuid.UUID, name: str) -> object:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(image_rows.c[name]).where(image_rows.c.id == image_id))
        ).scalar_one()


# ------------------------------------------------------------------------------------ insert


async def test_an_upload_is_recorded_once_and_shown_as_its_view(engine: AsyncEngine) -> None:
    user = uuid.uuid4()
    req = upload(user, stored("original", "u/o.webp"), stored("thumbnail", "u/t.webp"), name="cat.webp")
    first = (await images.record_upload(engine, req)).image
    assert (first.id, first.user_id, first.generation_id) == (req.image_id, user, None)
    assert (first.content_key, first.thumbnail_key, first.format) == ("u/o.webp", "u/t.webp", "webp")
    assert (first.width, first.height, first.file_size, first.is_public) == (640, 480, 123, False)
    again = (await images.record_upload(engine, req)).image  # a retried request: the same record
    assert again == first
    detail = (
        await images.get_image_detail(engine, c.GetImageDetailRequest(image_id=req.image_id, viewer_id=user))
    ).image
    assert detail.prompt == "Uploaded: cat.webp"
    assert await column(engine, req.image_id, "filename") == "cat.webp"


async def test_an_upload_takes_the_format_from_the_original_and_may_lack_a_thumbnail(
    engine: AsyncEngine,
) -> None:
    req = upload(uuid.uuid4(), stored("original", "u/v.svg", "image/svg+xml"), name="x" * 300 + ".svg")
    view = (await images.record_upload(engine, req)).image
    assert (view.format, view.thumbnail_key) == ("svg", None)
    assert await column(engine, req.image_id, "filename") == "x" * 255  # the column's length


async def test_an_upload_without_an_original_or_with_another_users_id_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(QueryFailed) as missing:
        await images.record_upload(engine, upload(uuid.uuid4(), stored("thumbnail", "u/t.webp")))
    assert (missing.value.code, missing.value.field) == (c.QueryErrorCode.INVALID, "objects")
    taken = upload(uuid.uuid4(), stored("original", "u/a.webp"))
    await images.record_upload(engine, taken)
    stolen = taken.model_copy(update={"user_id": uuid.uuid4()})
    with pytest.raises(QueryFailed) as conflict:
        await images.record_upload(engine, stolen)
    assert (conflict.value.code, conflict.value.field) == (c.QueryErrorCode.CONFLICT, "image_id")
    assert await column(engine, taken.image_id, "user_id") == taken.user_id


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_server.url, "test-catalog")
    await connected.ensure_streams()
    yield connected
    await connected.close()


async def test_record_image_inserts_once_and_announces_with_one_id(engine: AsyncEngine, bus: Bus) -> None:
    cmd = c.RecordImageCommand(
        image_id=uuid.uuid4(),
        generation_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        model="flux-dev",
        prompt="a red kite",
        negative_prompt="blur",
        seed=7,
        objects=(stored("original", "g/o.png", "image/png"), stored("thumbnail", "g/t.webp")),
    )
    await images.record_image(engine, bus, cmd)
    await images.record_image(engine, bus, cmd)  # a redelivery: no second row, the same announcement
    detail = (
        await images.get_image_detail(
            engine, c.GetImageDetailRequest(image_id=cmd.image_id, viewer_id=cmd.user_id)
        )
    ).image
    assert (detail.generation_id, detail.model, detail.prompt, detail.negative_prompt, detail.seed) == (
        cmd.generation_id,
        "flux-dev",
        "a red kite",
        "blur",
        7,
    )
    assert (detail.format, detail.thumbnail_key) == ("png", "g/t.webp")
    assert await column(engine, cmd.image_id, "filename") == f"{cmd.generation_id}.png"
    subject = c.IMAGE_CREATED.subject(generation_id=cmd.generation_id)
    info = await bus.js.stream_info(c.EVT_STREAM.name, subjects_filter=subject)
    assert info.state.subjects == {subject: 1}  # JetStream dropped the copy by its message id

    with pytest.raises(Reject):
        await images.record_image(
            engine,
            bus,
            cmd.model_copy(update={"image_id": uuid.uuid4(), "objects": (stored("thumbnail", "t"),)}),
        )


# ------------------------------------------------------------------------------------ reads


async def test_an_image_is_visible_to_its_owner_and_when_public_to_everyone(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    private = await add_image(owner)
    public = await add_image(owner, is_public=True)
    assert (
        await images.get_image(engine, c.GetImageRequest(image_id=private, viewer_id=owner))
    ).image.id == private
    for viewer in (other, None):
        for read in (
            images.get_image(engine, c.GetImageRequest(image_id=private, viewer_id=viewer)),
            images.get_image_detail(engine, c.GetImageDetailRequest(image_id=private, viewer_id=viewer)),
        ):
            with pytest.raises(QueryFailed) as hidden:
                await read
            assert hidden.value.code is c.QueryErrorCode.NOT_FOUND  # never "forbidden"
        seen = await images.get_image(engine, c.GetImageRequest(image_id=public, viewer_id=viewer))
        assert (seen.image.id, seen.image.is_public) == (public, True)
    with pytest.raises(QueryFailed):
        await images.get_image(engine, c.GetImageRequest(image_id=uuid.uuid4(), viewer_id=owner))


async def test_the_detail_carries_tags_and_the_authors_profile(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    owner = uuid.uuid4()
    image = await add_image(owner, is_public=True)
    suffix = uuid.uuid4().hex[:8]
    for name in (f"b-{suffix}", f"a-{suffix}"):
        await tags.image_tag(engine, c.ImageTagRequest(image_id=image, user_id=owner, name=name))
    await profiles.update_profile(
        engine,
        c.UpdateProfileRequest(user_id=owner, username=f"u_{suffix}", avatar_url="https://a.example/p.png"),
    )
    detail = (
        await images.get_image_detail(engine, c.GetImageDetailRequest(image_id=image, viewer_id=None))
    ).image
    assert detail.tags == (f"a-{suffix}", f"b-{suffix}")
    assert (detail.author_username, detail.author_avatar_url) == (f"u_{suffix}", "https://a.example/p.png")


# ------------------------------------------------------------------------------------ changes


async def test_the_owner_changes_marks_and_archives(engine: AsyncEngine, add_image: AddImage) -> None:
    owner = uuid.uuid4()
    image = await add_image(owner)
    changed = (
        await images.update_image(
            engine,
            c.UpdateImageRequest(
                image_id=image, user_id=owner, is_public=True, is_favorite=True, rating=4, archived=True
            ),
        )
    ).image
    assert (changed.is_public, changed.is_favorite, changed.rating) == (True, True, 4)
    assert changed.archived_at is not None
    again = (
        await images.update_image(engine, c.UpdateImageRequest(image_id=image, user_id=owner, archived=True))
    ).image
    assert again.archived_at == changed.archived_at  # archiving twice keeps the first time
    cleared = (
        await images.update_image(
            engine, c.UpdateImageRequest(image_id=image, user_id=owner, clear_rating=True, archived=False)
        )
    ).image
    assert (cleared.rating, cleared.archived_at, cleared.is_favorite) == (None, None, True)
    unchanged = (await images.update_image(engine, c.UpdateImageRequest(image_id=image, user_id=owner))).image
    assert unchanged == cleared


async def test_someone_elses_image_cannot_be_changed(engine: AsyncEngine, add_image: AddImage) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    image = await add_image(owner, is_public=True)
    for req in (
        c.UpdateImageRequest(image_id=image, user_id=other, is_public=False),
        c.UpdateImageRequest(image_id=image, user_id=other),
    ):
        with pytest.raises(QueryFailed) as refused:
            await images.update_image(engine, req)
        assert refused.value.code is c.QueryErrorCode.NOT_FOUND
    assert await column(engine, image, "is_public") is True


async def test_bulk_archive_restore_and_delete_touch_only_the_owners_images(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    owner = uuid.uuid4()
    mine = [await add_image(owner) for _ in range(3)]
    theirs = await add_image(uuid.uuid4())
    asked = (mine[2], theirs, mine[0], mine[2], mine[1])  # the reply keeps this order, once each

    def bulk(action: str, ids: tuple[uuid.UUID, ...]) -> c.BulkImagesRequest:
        return c.BulkImagesRequest(user_id=owner, action=action, ids=ids)  # type: ignore[arg-type]

    archived, queued = await images.bulk_images(engine, bulk("archive", asked))
    assert (archived.affected, queued) == ((mine[2], mine[0], mine[1]), False)
    assert await column(engine, theirs, "archived_at") is None
    restored, _ = await images.bulk_images(engine, bulk("restore", (mine[0],)))
    assert restored.affected == (mine[0],)
    assert await column(engine, mine[0], "archived_at") is None

    deleted, queued = await images.bulk_images(engine, bulk("delete", asked))
    assert (deleted.affected, queued) == ((mine[2], mine[0], mine[1]), True)
    keys = {f"test/{owner}/{i}{suffix}" for i in mine for suffix in (".webp", ".thumb.webp")}
    async with engine.connect() as conn:
        left = (
            await conn.execute(select(func.count()).where(image_rows.c.id.in_([*mine, theirs])))
        ).scalar_one()
        payloads = (await conn.execute(select(outbox.c.payload))).scalars().all()
        envelopes = [
            envelope
            for envelope in (json.loads(payload) for payload in payloads)
            if keys & set(envelope["data"].get("keys", ()))
        ]
    assert left == 1
    assert len(envelopes) == 1 and envelopes[0]["type"] == "media.delete"
    assert set(envelopes[0]["data"]["keys"]) == keys  # one message for the whole delete
    nothing, queued = await images.bulk_images(engine, bulk("delete", asked))
    assert (nothing.affected, queued) == ((), False)


async def test_downloads_are_counted_into_popularity(engine: AsyncEngine, add_image: AddImage) -> None:
    image = await add_image(uuid.uuid4(), like_count=2)
    for _ in range(3):
        await images.count_download(engine, c.ImageDownloadedCommand(image_id=image))
    assert (await column(engine, image, "download_count"), await column(engine, image, "popularity")) == (
        3,
        5,
    )


async def test_referenced_keys_are_the_asked_ones_an_image_points_at(
    engine: AsyncEngine, add_image: AddImage
) -> None:
    user = uuid.uuid4()
    image_id = await add_image(user)
    content, thumb = f"test/{user}/{image_id}.webp", f"test/{user}/{image_id}.thumb.webp"
    stray = f"test/{user}/{uuid.uuid4()}.webp"
    asked = c.ReferencedKeysRequest(keys=(stray, thumb, content, thumb))
    reply = await images.referenced_keys(engine, asked)
    assert reply.keys == (thumb, content)
    assert (await images.referenced_keys(engine, c.ReferencedKeysRequest(keys=()))).keys == ()
