"""End-to-end throughput and orchestration overhead of the whole pipeline.

Starts its own stack (all five services, NATS, PostgreSQL, the simulator with a fixed latency
and no jitter), adds a bench-only model "bench-tiny" (64x64, else flux-schnell) to the catalog,
then, for each concurrency level, runs a closed loop: ``concurrency`` clients each submit a
generation through the gateway and wait for its terminal GENERATION_UPDATED event (a NATS
subscription, no polling), then submit the next. Several users share the load.

- throughput: completed generations per wall-clock second over the level;
- overhead per generation: end-to-end (orchestrator's created_at -> completed_at) minus the
  prediction time the simulator reports (``predict_time_seconds``) minus the mean image
  processing time of media (its ``picture_media_processing_seconds`` histogram);
  p50/p99 printed, plus the mean time spent waiting for a slot (queue time);
- CPU milliseconds per generation of each process (services, simulator, NATS, PostgreSQL
  with its backends, this client): the budget of the two cores.

    .venv/bin/python bench/orchestrator/e2e.py [--levels 20,100] [--per-level 600] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import nats
from nats.aio.msg import Msg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from picture.devstack.cpu import ms_per_item, tree_cpu_seconds
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.tokens import mint_token

TERMINAL = {"completed", "failed", "cancelled"}
USERS = 20


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _add_tiny_model(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO catalog.models SELECT 'bench-tiny', 'Bench tiny', replicate_id, version, "
                "'bench only', 64, 64, 64, max_width, 64, max_height, default_steps, max_steps, "
                "default_guidance_scale, supports_negative_prompt, supports_seed, supports_img2img, "
                "supported_aspect_ratios, cost_per_generation, estimated_time_seconds, true, false, 999, "
                "now(), now() FROM catalog.models WHERE name = 'flux-schnell' ON CONFLICT DO NOTHING"
            )
        )
    await engine.dispose()


async def _media_processing_mean(media_url: str) -> float:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{media_url}/metrics")).text
    total = count = 0.0
    for line in body.splitlines():
        if line.startswith("picture_media_processing_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("picture_media_processing_seconds_count"):
            count = float(line.split()[-1])
    return total / count if count else 0.0


def cpu_per_generation(
    before: dict[str, float], after: dict[str, float], client_seconds: float, generations: int
) -> str:
    """Milliseconds of CPU per completed generation by process (where the two cores went)."""
    used = ms_per_item(before, after, generations)
    used["this client"] = 1000 * client_seconds / generations
    ranked = sorted(used.items(), key=lambda kv: -kv[1])
    parts = ", ".join(f"{name} {ms:.1f}" for name, ms in ranked)
    return f"{sum(used.values()):.1f} ms CPU per generation: {parts}"


async def run_level(stack: Stack, concurrency: int, per_level: int) -> dict[str, float]:
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    waiters: dict[str, asyncio.Future[str]] = {}

    async def on_event(msg: Msg) -> None:
        generation = json.loads(msg.data)["data"]["generation"]
        future = waiters.get(generation["id"])
        if future is not None and not future.done() and generation["status"] in TERMINAL:
            future.set_result(generation["status"])

    await nc.subscribe("picture.evt.generation.>", cb=on_event)
    users = [uuid.uuid4() for _ in range(USERS)]
    clients = [
        httpx.AsyncClient(
            base_url=stack.gateway_url,
            headers={"Authorization": f"Bearer {mint_token(stack.secrets['PICTURE_JWT_SECRET'], u)}"},
            timeout=60,
            limits=httpx.Limits(max_connections=concurrency),
        )
        for u in users
    ]
    ids: list[str] = []
    remaining = per_level

    async def worker(index: int) -> None:
        nonlocal remaining
        client = clients[index % USERS]
        loop = asyncio.get_running_loop()
        while remaining > 0:
            remaining -= 1
            future: asyncio.Future[str] = loop.create_future()
            response = await client.post(
                "/v1/generations",
                json={
                    "model": "bench-tiny",
                    "prompt": f"bench {uuid.uuid4().hex}",
                    "width": 64,
                    "height": 64,
                },
            )
            assert response.status_code == 202, response.text
            body = response.json()
            waiters[body["id"]] = future
            if body["status"] in TERMINAL:
                future.set_result(body["status"])
            await asyncio.wait_for(future, 120)
            ids.append(body["id"])

    cpu_before, client_before = tree_cpu_seconds(stack.pids()), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    cpu_after, client_after = tree_cpu_seconds(stack.pids()), time.process_time()
    for client in clients:
        await client.aclose()
    await nc.close()

    processing = await _media_processing_mean(stack.processes["media"].url)
    engine = create_async_engine(stack.database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT status, extract(epoch FROM completed_at - created_at) AS total, "
                    "extract(epoch FROM coalesce(started_at, created_at) - created_at) AS queued, "
                    "predict_time_seconds FROM orchestrator.generations WHERE id = ANY(:ids)"
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            )
        ).all()
        stages = (
            await conn.execute(
                text(
                    "SELECT to_status, avg(extract(epoch FROM at - prev)) * 1000 AS ms FROM ("
                    " SELECT to_status, at, lag(at) OVER (PARTITION BY generation_id ORDER BY id) AS prev"
                    " FROM orchestrator.status_history WHERE generation_id = ANY(:ids)) s "
                    "WHERE prev IS NOT NULL GROUP BY to_status"
                ),
                {"ids": [uuid.UUID(i) for i in ids]},
            )
        ).all()
    await engine.dispose()
    print("  mean ms into each state:", {r.to_status: round(float(r.ms)) for r in stages}, flush=True)
    if ids:
        own = client_after - client_before
        print("  " + cpu_per_generation(cpu_before, cpu_after, own, len(ids)), flush=True)
    completed = [r for r in rows if r.status == "completed"]
    overhead = [(float(r.total) - float(r.predict_time_seconds or 0) - processing) * 1000 for r in completed]
    return {
        "concurrency": concurrency,
        "generations": len(rows),
        "completed": len(completed),
        "wall_s": wall,
        "throughput": len(completed) / wall,
        "overhead_p50_ms": _percentile(overhead, 0.5),
        "overhead_p99_ms": _percentile(overhead, 0.99),
        "queue_mean_ms": statistics.fmean(float(r.queued) * 1000 for r in completed),
        "predict_mean_ms": statistics.fmean(float(r.predict_time_seconds or 0) * 1000 for r in completed),
        "processing_mean_ms": processing * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="20,100")
    parser.add_argument("--per-level", type=int, default=600)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="picture-bench-") as tmp:
        var_dir = Path(tmp)
        stack = Stack(
            var_dir,
            Ports.free(),
            ensure_dev_env(var_dir / "dev.env"),
            pg_fsync=False,
            extra_env={
                "replicate-simulator": {
                    "PICTURE_SIMULATOR_LATENCY_MS": str(args.latency_ms),
                    "PICTURE_SIMULATOR_START_DELAY_MS": "0",
                    "PICTURE_SIMULATOR_JITTER": "0",
                },
                "orchestrator": {
                    "PICTURE_GLOBAL_CONCURRENCY": "1000",
                    "PICTURE_PER_USER_CONCURRENCY": "100",
                },
                "gateway": {
                    "PICTURE_MAX_CONCURRENT": "1000",
                    "PICTURE_HOURLY_LIMIT": "100000",
                    "PICTURE_DAILY_LIMIT": "100000",
                    "PICTURE_RATE_LIMIT_PER_MINUTE": "100000",
                },
            },
        )
        try:
            stack.start()
            asyncio.run(_add_tiny_model(stack.database_url))
            print(
                f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            )
            for level in (int(x) for x in args.levels.split(",")):
                asyncio.run(run_level(stack, level, min(50, args.per_level)))  # warm-up
                result = asyncio.run(run_level(stack, level, args.per_level))
                print(
                    "concurrency {concurrency}: {completed}/{generations} completed in {wall_s:.1f} s, "
                    "{throughput:.1f} generations/s; overhead p50 {overhead_p50_ms:.0f} ms, "
                    "p99 {overhead_p99_ms:.0f} ms; mean queue {queue_mean_ms:.0f} ms, "
                    "predict {predict_mean_ms:.0f} ms, media processing {processing_mean_ms:.1f} ms".format(
                        **result
                    ),
                    flush=True,
                )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
