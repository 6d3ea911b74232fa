"""Gateway benchmarks on a real stack (NATS, PostgreSQL, the services as processes).

1. Submit: POST /v1/generations with 32 concurrent connections for --seconds, against a bare
   FastAPI endpoint (bare_app.py, same body model) in the same run. The adapter is stopped
   first, so the pipeline behind does not compete for the CPU: the figure is the gateway's
   submit path (token, rate limit, quota reservation in PostgreSQL, model lookup, orchestrator
   create over NATS). Closed loop: throughput at saturation (latency there is queueing).
2. Paced: both endpoints at each --paced-rates offered rate, 32 connections, latency from each
   request's scheduled time: the latency a client sees below saturation.
3. Live updates: --streams WebSocket clients (/v1/ws, one per user; the same ordered-consumer
   path as SSE) are open; GENERATION_UPDATED events are published to JetStream one by one and
   the latency from publish to the client's receipt is measured.

    .venv/bin/python bench/gateway/run.py --seconds 10 --streams 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
from websockets.asyncio.client import ClientConnection, connect

from picture.common import contracts as c
from picture.devstack.cpu import ms_per_item, tree_cpu_seconds
from picture.devstack.ports import free_port
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.tokens import mint_token

HERE = Path(__file__).parent
BODY = {"model": "flux-schnell", "prompt": "a lighthouse at dusk", "width": 512, "height": 512}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def load(
    url: str,
    tokens: list[str],
    seconds: float,
    connections: int,
    path: str | None = None,
    rate: float | None = None,
) -> dict[str, float]:
    """Closed loop (``rate`` None: each connection sends as soon as its last answer came), or
    paced at ``rate`` requests/s in total over the connections. Paced latency is measured from
    each request's scheduled time, so a slow answer also counts against the requests queued
    behind it (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    warm_up = 2.0 if rate else 0.0  # paced: clients connect before the schedule begins
    begin = time.perf_counter() + warm_up
    stop = time.monotonic() + warm_up + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"} if tokens else {}
        interval = connections / rate if rate else 0.0
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            if rate:  # connect first (not timed), then start on the common schedule
                await (client.post("/v1/generations", json=BODY) if path is None else client.get(path))
                scheduled = begin + interval * i / connections
            while time.monotonic() < stop:
                if rate:
                    delay = scheduled - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    started = scheduled
                    scheduled += interval
                else:
                    started = time.perf_counter()
                if path is None:
                    response = await client.post("/v1/generations", json=BODY)
                else:
                    response = await client.get(path)
                elapsed = time.perf_counter() - started
                if response.status_code in (200, 202):
                    latencies.append(elapsed)
                else:
                    errors += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    wall = time.monotonic() - started - warm_up
    return {
        "requests_per_second": len(latencies) / wall,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "ok": len(latencies),
        "errors": errors,
    }


def start_bare() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=HERE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/docs", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("bare app did not start")


async def live(stack: Stack, secret: str, streams: int, events: int) -> dict[str, float]:
    users = [uuid.uuid4() for _ in range(streams)]
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/v1/ws"
    sockets: list[ClientConnection] = []
    for i in range(0, streams, 50):
        batch = users[i : i + 50]
        sockets += await asyncio.gather(
            *(connect(f"{ws_url}?access_token={mint_token(secret, u)}", max_queue=None) for u in batch)
        )
    sent: dict[str, float] = {}
    latencies: list[float] = []
    received = asyncio.Event()

    async def reader(socket: ClientConnection) -> None:
        async for raw in socket:
            frame = json.loads(raw)
            if frame["type"] == "generation":
                latencies.append(time.perf_counter() - sent[frame["generation"]["id"]])
                if len(latencies) >= events:
                    received.set()

    for socket in sockets:  # every socket's subscription is in place
        assert json.loads(await socket.recv())["type"] == "ready"
    readers = [asyncio.ensure_future(reader(s)) for s in sockets]
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    js = nc.jetstream()
    parameters = c.GenerationParameters(prompt="bench", width=512, height=512)
    for n in range(events):
        user = users[n % streams]
        generation_id = uuid.uuid4()
        view = c.GenerationView(
            id=generation_id,
            user_id=user,
            status=c.GenerationStatus.PROCESSING,
            model="flux-schnell",
            parameters=parameters,
            created_at=datetime.now(UTC),
        )
        sent[str(generation_id)] = time.perf_counter()
        envelope = c.Envelope.wrap(c.GenerationUpdatedEvent(generation=view))
        await js.publish(
            c.GENERATION_UPDATED.subject(user_id=user, generation_id=generation_id),
            envelope.model_dump_json().encode(),
        )
        await asyncio.sleep(0.01)  # ~100 status changes a second
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(received.wait(), 60)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    await nc.close()
    return {
        "streams": streams,
        "events_sent": events,
        "events_received": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument(
        "--paced-rates",
        default="50,100",
        help="offered rates (requests/s) for the paced latency runs of both endpoints",
    )
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    secrets = ensure_dev_env(var / "dev.env")
    stack = Stack(
        var,
        Ports.free(),
        secrets,
        pg_fsync=False,
        extra_env={
            "gateway": {
                "PICTURE_HOURLY_LIMIT": "1000000",
                "PICTURE_DAILY_LIMIT": "1000000",
                "PICTURE_MAX_CONCURRENT": "1000000",
                "PICTURE_RATE_LIMIT_PER_MINUTE": "1000000",
                "PICTURE_MAX_STREAMS_PER_USER": "1000",
                "PICTURE_LOG_LEVEL": "WARNING",
            }
        },
    )
    stack.start()
    bare, bare_url = start_bare()
    try:
        stack.processes["replicate-adapter"].stop()
        secret = secrets["PICTURE_JWT_SECRET"]
        tokens = [mint_token(secret, uuid.uuid4()) for _ in range(args.connections)]
        await load(stack.gateway_url, tokens, 2, args.connections)  # warm-up: users, pools, caches
        await load(bare_url, [], 2, args.connections)
        # latency below saturation first (the closed loop leaves a backlog behind): both
        # endpoints at the same offered rates
        paced: dict[str, dict[str, dict[str, float]]] = {}
        for rate in (float(r) for r in args.paced_rates.split(",") if r):
            paced[f"{rate:g}/s"] = {
                "bare": await load(bare_url, [], args.seconds, args.connections, rate=rate),
                "gateway": await load(stack.gateway_url, tokens, args.seconds, args.connections, rate=rate),
            }
            print(json.dumps({"paced": {f"{rate:g}/s": paced[f"{rate:g}/s"]}}), flush=True)
        bare_result = await load(bare_url, [], args.seconds, args.connections)
        cpu_before = tree_cpu_seconds(stack.pids())
        client_before = time.process_time()
        gateway_result = await load(stack.gateway_url, tokens, args.seconds, args.connections)
        cpu_after = tree_cpu_seconds(stack.pids())
        ok = int(gateway_result["ok"])
        submit_cpu = {name: round(ms, 2) for name, ms in ms_per_item(cpu_before, cpu_after, ok).items()}
        submit_cpu["load generator"] = round(
            1000 * (time.process_time() - client_before) / gateway_result["ok"], 2
        )
        print(json.dumps({"cpu_ms_per_submit": submit_cpu}), flush=True)
        print(json.dumps({"bare": bare_result, "gateway": gateway_result}), flush=True)
        # the gateway's own part alone: token, request rate, limits read (PostgreSQL), no NATS
        limits_result = await load(stack.gateway_url, tokens, args.seconds, args.connections, "/v1/me/limits")
        print(json.dumps({"gateway_limits_read": limits_result}), flush=True)
        live_result = await live(stack, secret, args.streams, args.events)
    finally:
        bare.terminate()
        bare.wait(10)
        stack.stop()
    print(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                "bare": bare_result,
                "gateway": gateway_result,
                "cpu_ms_per_submit": submit_cpu,
                "ratio": gateway_result["requests_per_second"] / bare_result["requests_per_second"],
                "gateway_limits_read": limits_result,
                "paced": paced,
                "live": live_result,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
