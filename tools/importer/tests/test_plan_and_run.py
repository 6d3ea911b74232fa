"""The importer against a fake target: the old data's defects repaired and reported, files
missing, a dry run that sends nothing, and a second run that writes nothing."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from picture.common import contracts as c
from picture.devstack.ports import free_port
from picture.importer.plan import build_plan
from picture.importer.run import RefusedError, run_import
from picture.importer.source import DirectoryObjects, S3Objects, async_url

T0 = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
ALICE, BOB = uuid.uuid4(), uuid.uuid4()
FLUX = c.ModelSpec(name="flux-schnell", display_name="FLUX", replicate_id="black-forest-labs/flux-schnell")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def generation(user: uuid.UUID, status: str, minutes: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "user_id": user,
        "prompt": f"{status} {minutes}",
        "model": "flux-schnell",
        "model_id": "black-forest-labs/flux-schnell",
        "width": 1024,
        "height": 768,
        "steps": 4,
        "guidance_scale": 0.0,
        "seed": 0,
        "status": status,
        "error_message": None,
        "created_at": T0 + timedelta(minutes=minutes),
        "completed_at": T0 + timedelta(minutes=minutes, seconds=8) if status == "completed" else None,
        **extra,
    }


@pytest.fixture
def old(tmp_path: Path) -> tuple[dict[str, list[dict[str, Any]]], DirectoryObjects]:
    done = generation(ALICE, "completed", 1)
    lost = generation(ALICE, "completed", 2)  # its file is gone
    group = uuid.uuid4()  # a quick multi-generation: only multi_group_id, no batch row
    stuck = generation(BOB, "processing", 3, multi_group_id=group, multi_index=1)
    cancelled = generation(
        BOB, "failed", 4, error_message="Cancelled by user", multi_group_id=group, multi_index=0
    )
    batch = {
        "id": uuid.uuid4(),
        "user_id": ALICE,
        "name": "two",
        "model_id": FLUX.replicate_id,
        "created_at": T0,
    }
    done["batch_id"] = lost["batch_id"] = batch["id"]
    lost["batch_index"] = 0  # done has no index: it takes the next free place
    image = {
        "id": uuid.uuid4(),
        "user_id": ALICE,
        "generation_id": done["id"],
        "prompt": done["prompt"],
        "storage_path": f"{ALICE}/{done['id']}.png",
        "is_public": True,
        "rating": 9,
        "created_at": T0,
    }
    lost_image = {**image, "id": uuid.uuid4(), "generation_id": lost["id"], "storage_path": f"{ALICE}/x.png"}
    upload = {
        "id": uuid.uuid4(),
        "user_id": BOB,
        "generation_id": None,
        "prompt": "Uploaded: cat.png",
        "storage_path": f"{BOB}/cat.png",
        "filename": "cat.png",
        "created_at": T0,
    }
    (tmp_path / "generated-images" / str(ALICE)).mkdir(parents=True)
    (tmp_path / "generated-images" / str(ALICE) / f"{done['id']}.png").write_bytes(png())
    (tmp_path / "user-uploads" / str(BOB)).mkdir(parents=True)
    (tmp_path / "user-uploads" / str(BOB) / "cat.png").write_bytes(png())
    tables = {
        "profiles": [
            {"id": ALICE, "username": "alice", "created_at": T0},
            {"id": BOB, "username": "b!", "created_at": T0},  # not a valid username any more
        ],
        "tags": [{"id": 1, "name": " Sunset ", "color": "orange"}, {"id": 2, "name": "", "color": None}],
        "prompt_templates": [
            {"id": uuid.uuid4(), "user_id": ALICE, "name": "nul\x00name", "prompt": "p", "created_at": T0}
        ],
        "batch_generations": [batch],
        "image_generations": [done, lost, stuck, cancelled],
        "images": [image, lost_image, upload],
        "image_tags": [{"image_id": image["id"], "tag_id": 1}, {"image_id": uuid.uuid4(), "tag_id": 1}],
        "image_likes": [{"image_id": image["id"], "user_id": BOB}],
        "user_rate_limits": [
            {"user_id": ALICE, "daily_limit": 500, "hourly_limit": -1, "max_concurrent_generations": 5},
            {"user_id": BOB, "daily_limit": None, "hourly_limit": None},  # nothing of their own
        ],
    }
    return tables, DirectoryObjects(tmp_path)


class FakeServices:
    """Keeps what it was sent by id, like the services (idempotent by id)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[uuid.UUID | str, c.Message]] = {}
        self.stored: list[uuid.UUID] = []

    async def models(self) -> dict[str, c.ModelSpec]:
        return {FLUX.name: FLUX}

    async def send(self, query: c.Query[Any, c.ImportReply], request: c.Message) -> bool:
        names = (
            ("generation_id",) if query is c.IMPORT_GENERATION else ("image_id", "user_id", "tag", "template")
        )
        key = next(getattr(request, n) for n in names if hasattr(request, n))
        key = getattr(key, "id", None) or getattr(key, "name", None) or key
        table = self.records.setdefault(query.subject, {})
        if key in table:
            return False
        table[key] = request
        return True

    async def image_exists(self, image_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return image_id in self.records.get(c.IMPORT_IMAGE.subject, {})

    async def generation_exists(self, generation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return generation_id in self.records.get(c.IMPORT_GENERATION.subject, {})

    async def set_limits(self, limits: Any) -> bool | None:
        return None  # no gateway given: not imported

    async def store(
        self, user_id: uuid.UUID, generation_id: uuid.UUID | None, image_id: uuid.UUID, data: bytes
    ) -> tuple[c.StoredObject, ...]:
        if not data.startswith(b"\x89PNG"):
            raise RefusedError("bad file: not an image")
        self.stored.append(image_id)
        key = f"{user_id}/{generation_id or image_id}/image.webp"
        return (
            c.StoredObject(
                key=key,
                role="original",
                content_type="image/webp",
                size=1,
                width=40,
                height=30,
                sha256="0" * 64,
            ),
        )


def test_the_plan_repairs_the_known_defects(
    old: tuple[dict[str, list[dict[str, Any]]], DirectoryObjects],
) -> None:
    tables, _ = old
    plan = build_plan(tables, {FLUX.name: FLUX})
    by_prompt = {g.request.parameters.prompt: g.request for g in plan.generations}
    stuck, cancelled = by_prompt["processing 3"], by_prompt["failed 4"]
    assert stuck.status is c.GenerationStatus.FAILED and "processing" in stuck.reason
    assert cancelled.status is c.GenerationStatus.CANCELLED
    done = by_prompt["completed 1"]
    assert (done.parameters.seed, done.parameters.guidance_scale) == (0, 0.0)  # not "missing"
    assert done.created_at == T0 + timedelta(minutes=1)
    (image,) = [g.image for g in plan.generations if g.request is done]
    assert image is not None and image.request.rating is None  # 9 is not a rating
    assert image.request.tags == ("sunset",) and image.request.liked_by == (BOB,)
    assert [p.username for p in plan.profiles] == ["alice", None]
    assert plan.templates[0].template.name == "nul\ufffdname"  # kept, made storable
    (limits,) = plan.limits
    assert (limits.user_id, limits.daily_limit, limits.hourly_limit, limits.max_concurrent) == (
        ALICE,
        500,
        None,
        5,
    )
    batches = {b.kind: b for b in plan.batches}
    assert (batches["batch"].name, batches["batch"].model, batches["batch"].user_id) == (
        "two",
        "flux-schnell",
        ALICE,
    )
    assert (batches["multi"].user_id, batches["multi"].model) == (BOB, "flux-schnell")
    placed = {
        g.request.parameters.prompt: (g.request.batch_id, g.request.batch_index) for g in plan.generations
    }
    assert placed["completed 2"] == (batches["batch"].batch_id, 0)
    assert placed["completed 1"] == (batches["batch"].batch_id, 1)
    assert placed["failed 4"] == (batches["multi"].batch_id, 0)
    assert placed["processing 3"] == (batches["multi"].batch_id, 1)
    reasons = {(s.table, s.reason) for s in plan.skipped}
    assert ("image_tags", "orphan row: no such image") in reasons
    assert ("tags", "bad value: name ''") in reasons


async def test_import_then_again_writes_nothing_twice(
    old: tuple[dict[str, list[dict[str, Any]]], DirectoryObjects],
) -> None:
    tables, objects = old
    services = FakeServices()
    first = await run_import(tables, objects, services)
    counts = first.as_dict()["counts"]
    assert counts["image_generations"] == {"imported": 4, "already": 0, "skipped": 0}
    assert counts["images"] == {"imported": 2, "already": 0, "skipped": 1}  # one file is missing
    assert ("images", "missing file") in {(s.table, s.reason.split(":")[0]) for s in first.skipped}
    assert ("user_rate_limits", "not imported") in {(s.table, s.reason.split(":")[0]) for s in first.skipped}
    lost = [
        g
        for g in services.records[c.IMPORT_GENERATION.subject].values()
        if isinstance(g, c.ImportGenerationRequest) and g.parameters.prompt == "completed 2"
    ]
    assert lost[0].status is c.GenerationStatus.FAILED  # completed, but its image is gone

    stored = len(services.stored)
    second = await run_import(tables, objects, services)
    again = second.as_dict()["counts"]
    assert again["image_generations"] == {"imported": 0, "already": 4, "skipped": 0}
    assert again["images"]["imported"] == 0 and again["profiles"]["imported"] == 0
    assert again["batch_generations"] == {"imported": 0, "already": 2, "skipped": 0}
    assert len(services.stored) == stored  # nothing stored again either


async def test_dry_run_sends_nothing_and_reports_what_it_would(
    old: tuple[dict[str, list[dict[str, Any]]], DirectoryObjects],
) -> None:
    tables, objects = old
    report = await run_import(tables, objects, None)
    assert report.dry_run and report.as_dict()["counts"]["images"]["skipped"] == 1
    assert "would import" in report.to_text()


def test_supabase_urls_are_read_with_asyncpg() -> None:
    assert async_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def test_the_buckets_can_be_read_from_s3(
    old: tuple[dict[str, list[dict[str, Any]]], DirectoryObjects], moto_endpoint: str
) -> None:
    tables, folder = old
    session = aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    async with session.client("s3", endpoint_url=moto_endpoint) as client:
        for bucket in folder.root.iterdir():
            await client.create_bucket(Bucket=bucket.name)
            for file in bucket.rglob("*"):
                if file.is_file():
                    await client.put_object(
                        Bucket=bucket.name, Key=str(file.relative_to(bucket)), Body=file.read_bytes()
                    )
        objects = S3Objects(client)
        assert await objects.find([f"no-such-bucket/{ALICE}/x.png", "user-uploads/nothing.png"]) is None
        from_s3 = await run_import(tables, objects, FakeServices())
    from_folder = await run_import(tables, folder, FakeServices())
    assert from_s3.as_dict()["counts"] == from_folder.as_dict()["counts"]
    assert from_s3.as_dict()["counts"]["images"]["imported"] == 2
