"""Reads and waits on a real stack (NATS, PostgreSQL, the services as processes).

1. GET of a finished generation (token, read model in PostgreSQL, ETag) with --connections
   concurrent connections for --seconds, against a bare FastAPI GET (bare_app.py: the same
   response model, one stored representation, no auth) in the same run; the ratio of their
   throughputs, and the gateway's CPU per GET.
   ``--seconds 0`` leaves this part out.
2. Waiting instead of polling: --waiters clients each submit with ``Prefer: wait=60`` (the
   answer comes when the generation is terminal) --per-waiter times, the simulator taking a
   fixed --predict-ms; end-to-end p50/p99 and what the system adds to the prediction.

    .venv/bin/python bench/gateway/reads.py --seconds 10 --waiters 10 --predict-ms 3000
    .venv/bin/python bench/gateway/reads.py --seconds 0 --waiters 1 --per-waiter 10   # one at a time
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from run import load, pct, start_bare

from picture.devstack.cpu import ms_per_item, tree_cpu_seconds
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.tokens import mint_token

BODY = {"model": "flux-schnell", "prompt": "a lighthouse at dusk", "width": 1024, "height": 1024}


async def finished_generation(url: str, token: str) -> dict[str, object]:
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=90
    ) as api:
        response = await api.post("/v1/generations", json=BODY, headers={"Prefer": "wait=60"})
        body: dict[str, object] = response.json()
        assert body["status"] == "completed", body
        return body


async def waiters(url: str, tokens: list[str], per_waiter: int) -> list[float]:
    """End-to-end seconds of every generation: submit with Prefer: wait, answered when done."""
    latencies: list[float] = []

    async def one(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=60"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=90) as api:
            for i in range(per_waiter):
                started = time.perf_counter()
                response = await api.post(
                    "/v1/generations", json={**BODY, "prompt": f"wait {uuid.uuid4()} {i}"}
                )
                body = response.json()
                assert response.status_code == 202, body
                assert body["status"] == "completed", body
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(t) for t in tokens))
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--waiters", type=int, default=10)
    parser.add_argument("--per-waiter", type=int, default=5)
    parser.add_argument("--predict-ms", type=int, default=3000)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    secrets = ensure_dev_env(var / "dev.env")
    unlimited = {
        "PICTURE_HOURLY_LIMIT": "1000000",
        "PICTURE_DAILY_LIMIT": "1000000",
        "PICTURE_MAX_CONCURRENT": "1000000",
        "PICTURE_RATE_LIMIT_PER_MINUTE": "1000000",
        "PICTURE_LOG_LEVEL": "WARNING",
    }
    stack = Stack(
        var,
        Ports.free(),
        secrets,
        pg_fsync=False,
        extra_env={
            "gateway": unlimited,
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": str(args.predict_ms),
                "PICTURE_SIMULATOR_START_DELAY_MS": "0",
                "PICTURE_SIMULATOR_JITTER": "0",
            },
            "orchestrator": {"PICTURE_GLOBAL_CONCURRENCY": "1000", "PICTURE_PER_USER_CONCURRENCY": "100"},
        },
    )
    stack.start()
    bare, bare_url = start_bare()
    try:
        secret = secrets["PICTURE_JWT_SECRET"]
        tokens = [mint_token(secret, uuid.uuid4()) for _ in range(max(args.connections, args.waiters))]
        get: dict[str, object] = {}
        if args.seconds > 0:
            generation = await finished_generation(stack.gateway_url, tokens[0])
            path = f"/v1/generations/{generation['id']}"
            async with httpx.AsyncClient() as plain:
                (await plain.put(f"{bare_url}{path}", json=generation)).raise_for_status()
            same_user = [tokens[0]]
            await load(stack.gateway_url, same_user, 2, args.connections, path)  # warm-up
            await load(bare_url, [], 2, args.connections, path)
            bare_get = await load(bare_url, [], args.seconds, args.connections, path)
            cpu_before = tree_cpu_seconds(stack.pids())
            gateway_get = await load(stack.gateway_url, same_user, args.seconds, args.connections, path)
            cpu_after = tree_cpu_seconds(stack.pids())
            get_cpu = {
                name: round(ms, 2)
                for name, ms in ms_per_item(cpu_before, cpu_after, int(gateway_get["ok"])).items()
                if ms >= 0.01
            }
            get = {
                "bare": bare_get,
                "gateway": gateway_get,
                "ratio": round(gateway_get["requests_per_second"] / bare_get["requests_per_second"], 3),
                "cpu_ms_per_get": get_cpu,
            }
            print(json.dumps({"get": get}), flush=True)
        await waiters(stack.gateway_url, tokens[: args.waiters], 1)  # warm-up
        e2e = await waiters(stack.gateway_url, tokens[: args.waiters], args.per_waiter)
    finally:
        bare.terminate()
        bare.wait(10)
        stack.stop()
    predict = args.predict_ms / 1000
    print(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                "get": get,
                "prefer_wait": {
                    "waiters": args.waiters,
                    "generations": len(e2e),
                    "predict_s": predict,
                    "e2e_p50_s": round(statistics.median(e2e), 3),
                    "e2e_p99_s": round(pct(e2e, 99), 3),
                    "added_p50_ms": round((statistics.median(e2e) - predict) * 1000),
                    "added_p99_ms": round((pct(e2e, 99) - predict) * 1000),
                    "e2e_s": [round(seconds, 3) for seconds in e2e] if len(e2e) <= 20 else "(many)",
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
