"""The sweep of unreferenced storage objects on the running system: a media replica with the
sweep on (the stack's own media has it off, the default) removes an orphan older than the
grace period; an image's objects (the catalog points at them) and a fresh orphan stay."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.devstack.ports import free_port
from picture.devstack.stack import Stack
from tests.integration.conftest import wait_terminal

TWO_DAYS = 2 * 86400


def _backdate(path: os.PathLike[str] | str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def test_sweep_removes_old_orphans_only(stack: Stack, api: httpx.AsyncClient, db: AsyncEngine) -> None:
    response = await api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": f"sweep {uuid.uuid4()}"}
    )
    assert response.status_code == 202, response.text
    generation = await wait_terminal(api, response.json()["id"])
    assert generation["status"] == "completed", generation
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT content_key, thumbnail_key FROM catalog.images WHERE generation_id = :g"),
                {"g": uuid.UUID(generation["id"])},
            )
        ).one()
    root = stack.var_dir / "objects"
    referenced = [root / row.content_key, root / row.thumbnail_key]
    old_orphan = root / "sweep-test" / str(uuid.uuid4()) / "image.webp"
    fresh_orphan = root / "sweep-test" / str(uuid.uuid4()) / "image.webp"
    for path in (old_orphan, fresh_orphan):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"RIFF....WEBP")
    for path in (*referenced, old_orphan):
        _backdate(path, TWO_DAYS)

    base = stack._process("media")
    port = free_port()
    sweeper = dataclasses.replace(
        base,
        env={
            **base.env,
            "PICTURE_HTTP_PORT": str(port),
            "PICTURE_STORAGE_SWEEP_ENABLED": "true",
            "PICTURE_STORAGE_SWEEP_INTERVAL_SECONDS": "1",
        },
        port=port,
        log_file=stack.log_dir / "media-sweeper.log",
    )
    sweeper.start()
    try:
        sweeper.wait_ready()
        deadline = time.monotonic() + 20
        while old_orphan.exists():
            assert time.monotonic() < deadline, sweeper.log_tail(40)
            await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        sweeper.close()
    assert all(path.exists() for path in referenced)
    assert fresh_orphan.exists()
    assert 'picture_media_sweep_objects_total{outcome="removed"}' in metrics
