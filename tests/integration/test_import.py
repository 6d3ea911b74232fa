"""``picture-import`` against the real system: an old-schema database (the Supabase tables, with
the known defects) in the embedded PostgreSQL and a bucket folder of real image files; a dry
run writes nothing, a run killed midway and started again finishes the job, and each user then
sees their generations, gallery, tags, likes, templates and profile through the REST API; one
more run changes nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from picture.importer.__main__ import parse_args, run

T0 = datetime(2024, 4, 2, 8, 0, tzinfo=UTC)
ADMIN = uuid.uuid4()  # the operator running the import (per-user limits go through the admin API)

OLD_SCHEMA = """
CREATE TABLE profiles (id uuid PRIMARY KEY, email text, username text UNIQUE, avatar_url text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE image_generations (id uuid PRIMARY KEY, user_id uuid NOT NULL, prompt text NOT NULL,
  negative_prompt text, model text, model_id text, style text, width int, height int, steps int,
  guidance_scale float8, seed bigint, status text NOT NULL, error_message text,
  generation_time_seconds float8, replicate_prediction_id text, source_image_url text,
  generation_strength float8, batch_id uuid, batch_index int, multi_group_id uuid, multi_index int,
  retry_count int DEFAULT 0, priority int DEFAULT 0, created_at timestamptz NOT NULL,
  completed_at timestamptz);
CREATE TABLE images (id uuid PRIMARY KEY, user_id uuid NOT NULL, generation_id uuid,
  source_image_id uuid, filename text, storage_path text, public_url text, file_size bigint,
  width int, height int, format text, prompt text, negative_prompt text, model text, style text,
  is_public bool DEFAULT false, is_favorite bool DEFAULT false, rating int, download_count int
  DEFAULT 0, blurhash text, generation_strength float8, archived_at timestamptz,
  created_at timestamptz NOT NULL);
CREATE TABLE batch_generations (id uuid PRIMARY KEY, user_id uuid NOT NULL, name text,
  total_count int, completed_count int, failed_count int, status text, model_id text,
  model_version text, width int, height int, steps int, guidance_scale float8,
  is_multi_generation bool DEFAULT false, multi_count int, created_at timestamptz NOT NULL,
  completed_at timestamptz);
CREATE TABLE tags (id serial PRIMARY KEY, name text UNIQUE NOT NULL, color text);
CREATE TABLE image_tags (image_id uuid, tag_id int, UNIQUE (image_id, tag_id));
CREATE TABLE image_likes (image_id uuid, user_id uuid, created_at timestamptz DEFAULT now(),
  UNIQUE (image_id, user_id));
CREATE TABLE user_rate_limits (user_id uuid PRIMARY KEY, daily_generations int, daily_limit int,
  hourly_generations int, hourly_limit int, daily_reset_at timestamptz, hourly_reset_at timestamptz,
  max_concurrent_generations int, max_batch_size int, total_generations_all_time int,
  last_generation_at timestamptz);
CREATE TABLE prompt_templates (id uuid PRIMARY KEY, user_id uuid NOT NULL, name text NOT NULL,
  prompt text NOT NULL, negative_prompt text, category text, is_public bool DEFAULT false,
  use_count int DEFAULT 0, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
"""


def picture(fmt: str, color: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


class OldProduct:
    """The old rows and files, and what each user should see after the import."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.alice, self.bob = uuid.uuid4(), uuid.uuid4()
        self.rows: dict[str, list[dict[str, Any]]] = {
            t: []
            for t in (
                "profiles",
                "batch_generations",
                "image_generations",
                "images",
                "tags",
                "image_tags",
                "image_likes",
                "prompt_templates",
                "user_rate_limits",
            )
        }
        suffix = uuid.uuid4().hex[:6]
        self.username = f"alice_{suffix}"
        self.tag = f"sunset {suffix}"
        self.rows["profiles"] += [
            {"id": self.alice, "email": "alice@example.org", "username": self.username, "created_at": T0},
            {"id": self.bob, "email": "bob@example.org", "username": "b", "created_at": T0},  # too short now
        ]
        self.rows["tags"] += [{"id": 1, "name": self.tag.upper(), "color": "#ff8800"}]
        # Alice: two completed (PNG and JPEG; seed 0 and guidance 0), one left processing, one
        # cancelled (stored as failed "Cancelled by user"), one completed whose file is gone.
        # The first two are a batch whose stored counters are wrong (2 completed of 3).
        self.batch = uuid.uuid4()
        self.rows["batch_generations"].append(
            {
                "id": self.batch,
                "user_id": self.alice,
                "name": "evening set",
                "total_count": 3,
                "completed_count": 2,
                "failed_count": 0,
                "status": "processing",
                "model_id": "black-forest-labs/flux-schnell",
                "created_at": T0,
            }
        )
        self.alice_png = self.generated(
            self.alice, 1, "png", seed=0, guidance_scale=0.0, public=True, batch_id=self.batch, batch_index=0
        )
        self.alice_jpeg = self.generated(self.alice, 2, "jpeg", rating=7, batch_id=self.batch, batch_index=1)
        self.stuck = self.generation(self.alice, 3, "processing")
        self.cancelled = self.generation(self.alice, 4, "failed", error_message="Cancelled by user")
        self.lost = self.generated(self.alice, 5, "png", write_file=False)
        # Bob: one completed image and an upload that names a generation that never existed.
        self.bob_png = self.generated(self.bob, 6, "png")
        self.upload = uuid.uuid4()
        path = f"{self.bob}/holiday.jpg"
        self.write(f"user-uploads/{path}", picture("JPEG", (10, 120, 200)))
        self.rows["images"].append(
            {
                "id": self.upload,
                "user_id": self.bob,
                "generation_id": uuid.uuid4(),
                "filename": "holiday.jpg",
                "storage_path": path,
                "prompt": "Uploaded: holiday.jpg",
                "created_at": T0 + timedelta(hours=7),
            }
        )
        self.rows["image_tags"] += [
            {"image_id": self.alice_png, "tag_id": 1},
            {"image_id": uuid.uuid4(), "tag_id": 1},  # orphan: no such image
            {"image_id": self.alice_jpeg, "tag_id": 99},  # orphan: no such tag
        ]
        self.rows["image_likes"] += [
            {"image_id": self.alice_png, "user_id": self.bob},
            {"image_id": uuid.uuid4(), "user_id": self.alice},  # orphan
        ]
        self.rows["user_rate_limits"] += [
            {"user_id": self.bob, "daily_limit": 77, "hourly_limit": 9, "max_concurrent_generations": 2},
        ]
        self.template = uuid.uuid4()
        self.rows["prompt_templates"].append(
            {
                "id": self.template,
                "user_id": self.alice,
                "name": "Moody",
                "prompt": "moody light",
                "category": "photo",
                "use_count": 3,
                "created_at": T0,
                "updated_at": T0,
            }
        )

    def write(self, relative: str, data: bytes) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def generation(self, user: uuid.UUID, hour: int, status: str, **extra: Any) -> uuid.UUID:
        gid = uuid.uuid4()
        self.rows["image_generations"].append(
            {
                "id": gid,
                "user_id": user,
                "prompt": f"old prompt {hour}",
                "model": "flux-schnell",
                "model_id": "black-forest-labs/flux-schnell",
                "width": 1024,
                "height": 1024,
                "steps": 4,
                "guidance_scale": extra.pop("guidance_scale", 3.5),
                "seed": extra.pop("seed", 42),
                "status": status,
                "created_at": T0 + timedelta(hours=hour),
                "completed_at": T0 + timedelta(hours=hour, seconds=9) if status == "completed" else None,
                **extra,
            }
        )
        return gid

    def generated(
        self,
        user: uuid.UUID,
        hour: int,
        fmt: str,
        *,
        public: bool = False,
        rating: int | None = None,
        write_file: bool = True,
        **extra: Any,
    ) -> uuid.UUID:
        gid = self.generation(user, hour, "completed", **extra)
        image_id = uuid.uuid4()
        ext = "jpg" if fmt == "jpeg" else fmt
        path = f"{user}/{gid}.{ext}"
        if write_file:
            self.write(f"generated-images/{path}", picture(fmt.upper(), (hour * 30, 80, 40)))
        self.rows["images"].append(
            {
                "id": image_id,
                "user_id": user,
                "generation_id": gid,
                "filename": f"{gid}.{ext}",
                "storage_path": path,
                "prompt": f"old prompt {hour}",
                "model": "flux-schnell",
                "is_public": public,
                "is_favorite": hour == 2,
                "rating": rating,
                "download_count": hour,
                "created_at": T0 + timedelta(hours=hour, seconds=9),
            }
        )
        return image_id

    async def create_database(self, admin_url: str) -> str:
        name = f"old_{uuid.uuid4().hex[:10]}"
        admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {name}"))
        await admin.dispose()
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            for statement in OLD_SCHEMA.split(";"):
                if statement.strip():
                    await conn.execute(text(statement))
            for table, rows in self.rows.items():
                for row in rows:
                    columns = ", ".join(row)
                    values = ", ".join(f":{k}" for k in row)
                    await conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)
        await engine.dispose()
        return url


def cli_args(stack: Stack, source: str, objects: Path, *extra: str) -> list[str]:
    assert stack.nats is not None
    admin = mint_token(stack.secrets["PICTURE_JWT_SECRET"], ADMIN)
    return [
        "--gateway-url",
        stack.gateway_url,
        "--admin-token",
        admin,
        "--source-db",
        source,
        "--objects",
        str(objects),
        "--nats-url",
        stack.nats.url,
        "--media-url",
        f"http://127.0.0.1:{stack.ports.media}",
        "--concurrency",
        "1",
        *extra,
    ]


async def test_import_shows_each_user_their_data_and_a_second_run_changes_nothing(
    stack: Stack, db: AsyncEngine, tmp_path: Path, as_user: Any
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO gateway.users (user_id, is_admin) VALUES (:u, true)"), {"u": ADMIN}
        )
    old = OldProduct(tmp_path / "buckets")
    source = await old.create_database(stack.database_url)
    alice, bob = as_user(old.alice), as_user(old.bob)

    dry = await run(parse_args(cli_args(stack, source, old.root, "--dry-run", "--quiet")))
    assert dry.as_dict()["counts"]["image_generations"]["imported"] == 6
    assert (await alice.get("/v1/images")).json()["data"] == []  # a dry run writes nothing

    # A run killed after its first generation, then started again: the second finishes the job.
    script = Path(sys.executable).parent / "picture-import"
    killed = subprocess.Popen(
        [str(script), *cli_args(stack, source, old.root)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    assert killed.stderr is not None
    for line in killed.stderr:
        if line.startswith("image_generations 1/"):
            killed.kill()
            break
    killed.wait(timeout=30)
    killed.stderr.close()
    first = await run(parse_args(cli_args(stack, source, old.root, "--quiet")))
    counts = first.as_dict()["counts"]
    assert counts["image_generations"]["imported"] + counts["image_generations"]["already"] == 6
    assert counts["images"]["skipped"] == 1  # the missing file
    reasons = {(s.table, s.reason.split(":")[0]) for s in first.skipped}
    assert {
        ("images", "missing file"),
        ("image_tags", "orphan row"),
        ("image_likes", "orphan row"),
    } <= reasons

    gallery = (await alice.get("/v1/images")).json()["data"]
    assert [i["id"] for i in gallery] == [str(old.alice_jpeg), str(old.alice_png)]  # newest first
    png = gallery[1]
    assert png["created_at"].startswith("2024-04-02T09:00:09") and png["is_public"]
    assert png["tags"] == [old.tag] and png["like_count"] == 1 and png["format"] == "webp"
    assert png["seed"] == 0
    assert gallery[0]["is_favorite"] and gallery[0]["rating"] is None  # 7 is not a rating
    content = await alice.get(f"/v1/images/{old.alice_png}/content", follow_redirects=True)
    assert content.status_code == 200 and content.content[:4] == b"RIFF"

    generations = {g["id"]: g for g in (await alice.get("/v1/generations")).json()["data"]}
    assert len(generations) == 5
    assert generations[str(old.stuck)]["status"] == "failed"
    stuck = (await alice.get(f"/v1/generations/{old.stuck}")).json()
    assert "still processing" in stuck["history"][-1]["reason"] and stuck["error_message"]
    assert generations[str(old.cancelled)]["status"] == "cancelled"
    done = next(g for g in generations.values() if g["image"] and g["image"]["id"] == str(old.alice_png))
    assert (done["seed"], done["guidance_scale"], done["status"]) == (0, 0.0, "completed")
    assert done["created_at"].startswith("2024-04-02T09:00:00")
    lost = [g for g in generations.values() if g["prompt"] == "old prompt 5"]
    assert lost[0]["status"] == "failed" and lost[0]["image"] is None

    (batch,) = (await alice.get("/v1/batches")).json()["data"]
    assert (batch["id"], batch["name"], batch["status"], batch["total"]) == (
        str(old.batch),
        "evening set",
        "completed",
        2,
    )
    assert [item["image"]["id"] for item in batch["items"]] == [str(old.alice_png), str(old.alice_jpeg)]

    me = (await alice.get("/v1/me")).json()
    assert me["username"] == old.username
    templates = (await alice.get("/v1/prompt-templates", params={"scope": "own"})).json()["data"]
    assert [(t["id"], t["use_count"]) for t in templates] == [(str(old.template), 3)]

    bob_gallery = {i["id"]: i for i in (await bob.get("/v1/images")).json()["data"]}
    assert set(bob_gallery) == {str(old.bob_png), str(old.upload)}
    assert (await bob.get("/v1/me")).json()["username"] is None
    limits = (await bob.get("/v1/me/limits")).json()
    assert (limits["daily_limit"], limits["hourly_limit"], limits["max_concurrent"]) == (
        77,
        9,
        2,
    )  # "b" is not a username any more
    assert (await bob.get(f"/v1/images/{old.alice_png}")).status_code == 200  # public: bob sees it

    again = await run(parse_args(cli_args(stack, source, old.root, "--quiet")))
    assert all(n["imported"] == 0 for n in again.as_dict()["counts"].values()), again.to_text()
    assert [i["id"] for i in (await alice.get("/v1/images")).json()["data"]] == [i["id"] for i in gallery]
    assert json.loads(again.to_json())["counts"]["image_generations"]["already"] == 6
