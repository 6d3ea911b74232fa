"""The `picture` command line (the installed console script) against the real running system."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import set_limits

PICTURE = str(Path(sys.executable).parent / "picture")


@pytest.fixture
def run(stack: Stack, token: str, tmp_path: Path) -> Any:
    def run(
        *args: str, token_: str | None = token, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PICTURE_")}
        env |= {"PICTURE_BASE_URL": stack.gateway_url, "PICTURE_CONFIG_DIR": str(tmp_path / "config")}
        if token_ is not None:
            env["PICTURE_TOKEN"] = token_
        return subprocess.run(
            [PICTURE, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin, cwd=tmp_path
        )

    return run


def test_generate_writes_a_webp_of_the_size_with_progress_on_stderr(run: Any, tmp_path: Path) -> None:
    out = tmp_path / "cat.webp"
    done = run(
        "generate",
        "a cat on a windowsill",
        "--model",
        "flux-schnell",
        "--size",
        "1344x768",
        "--seed",
        "7",
        "--out",
        str(out),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)  # stdout is JSON only
    assert body["status"] == "completed" and body["seed"] == 7
    assert "completed" in done.stderr and "elapsed" in done.stderr  # plain progress lines (not a TTY)
    with Image.open(out) as image:
        assert image.format == "WEBP" and image.size == (1344, 768)

    status = run("status", body["id"], "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["image"]["id"] == body["image"]["id"]


def test_a_failed_generation_exits_1(run: Any) -> None:
    done = run("generate", "[sim:fail] a doomed cat", "--model", "flux-schnell", "--json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["status"] == "failed"
    assert "failed" in done.stderr


def test_cancel_then_status(run: Any) -> None:
    submitted = run(
        "generate", "[sim:slow=20000] a slow cat", "--model", "flux-schnell", "--no-wait", "--json"
    )
    assert submitted.returncode == 0, submitted.stderr
    generation_id = json.loads(submitted.stdout)["id"]
    cancelled = run("cancel", generation_id, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    again = run("cancel", generation_id)
    assert again.returncode == 1 and "conflict" in again.stderr
    missing = run("status", str(uuid.uuid4()))
    assert missing.returncode == 4 and "not found" in missing.stderr


def test_batch_from_a_file_and_images_by_tag(run: Any, tmp_path: Path, stack: Stack, token: str) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox\n\n# a comment\na blue whale\n")
    done = run(
        "batch",
        str(prompts),
        "--model",
        "flux-schnell",
        "--size",
        "256x256",
        "--json",
        "--out-dir",
        str(tmp_path / "out"),
    )
    assert done.returncode == 0, done.stderr
    (batch,) = json.loads(done.stdout)
    assert batch["total"] == 2 and batch["completed"] == 2
    assert len(list((tmp_path / "out").glob("*.webp"))) == 2

    from picture.client import Picture

    image_id = batch["items"][0]["image"]["id"]
    with Picture(token, base_url=stack.gateway_url) as client:
        client.tag_image(image_id, "cats")
    listed = run("images", "--tag", "cats", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [i["id"] for i in json.loads(listed.stdout)["data"]] == [image_id]


def test_models_limits_and_login(run: Any, token: str, tmp_path: Path) -> None:
    models = run("models", "--json")
    assert models.returncode == 0 and any(
        m["name"] == "flux-schnell" for m in json.loads(models.stdout)["data"]
    )

    login = run("login", "--token", token, token_=None)
    assert login.returncode == 0, login.stderr
    config = tmp_path / "config" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    limits = run("limits", "--json", token_=None)  # the stored token
    assert limits.returncode == 0, limits.stderr
    assert json.loads(limits.stdout)["can_generate"] is True
    human = run("limits", token_=None)
    assert "hourly:" in human.stdout and "resets" in human.stdout


def test_usage_and_auth_errors_have_their_exit_codes(run: Any, stack: Stack) -> None:
    assert run("generate").returncode == 2  # missing prompt
    bad_size = run("generate", "a cat", "--model", "flux-schnell", "--size", "huge")
    assert bad_size.returncode == 2 and "1344x768" in bad_size.stderr
    refused = run("generate", "a cat", "--model", "flux-schnell", "--size", "9000x64")
    assert refused.returncode == 2 and "width" in refused.stderr

    expired = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4(), ttl_seconds=-3600)
    done = run("limits", token_=expired)
    assert done.returncode == 3
    assert "your token expired, run picture login" in done.stderr
    assert run("limits", token_="not-a-token").returncode == 3


async def test_quota_reached_exits_5_with_the_reset_time(
    run: Any, db: AsyncEngine, user_id: uuid.UUID
) -> None:
    await set_limits(db, user_id, hourly_limit=1)
    first = run("generate", "the one allowed", "--model", "flux-schnell", "--no-wait")
    assert first.returncode == 0, first.stderr
    second = run("generate", "one too many", "--model", "flux-schnell", "--json")
    assert second.returncode == 5
    assert "quota reached" in second.stderr and "resets at" in second.stderr
    assert json.loads(second.stdout)["exit_code"] == 5
