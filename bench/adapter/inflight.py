"""In-flight capacity of the replicate adapter: how many generations one adapter process holds
open at the simulator, and its CPU and memory per 1,000 in flight.

Real processes: NATS (JetStream), PostgreSQL, the simulator (30 s per prediction) and one
adapter (``picture-replicate-adapter serve``), started with the devstack pieces. The bench
publishes N PredictCommands on ``picture.cmd.adapter.predict`` and measures:

- ramp: time until the adapter follows all N (its ``picture_replicate_predictions_in_flight``)
  and the simulator counts N in flight; the simulator is paused during the ramp so every
  prediction is in flight at once (30 s alone would let the first finish before the last is
  created on 2 cores); polls are capped at 40 per second (PICTURE_REPLICATE_POLL_MAX_PER_SECOND);
- hold: RSS and CPU of the adapter process over ``--hold`` seconds with N in flight (polling is
  the fallback cadence of webhook mode: first poll after 15 s, then x1.5 up to 60 s);
- drain: after unpausing, time until every prediction is reported terminal on NATS.

    .venv/bin/python bench/adapter/inflight.py --n 10000 --hold 60

Prints one JSON document (the figures for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from picture.catalog.seed import load_seed
from picture.common.contracts import (
    PREDICT,
    PREDICTION_UPDATED,
    Envelope,
    GenerationParameters,
    ModelSpec,
    PredictCommand,
    PredictionEvent,
    PredictionStatus,
)
from picture.common.messaging import Bus
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack

FLUX = next(ModelSpec(**m) for m in load_seed() if m["name"] == "flux-schnell")  # the catalog's record
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def proc_rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match
    return int(match.group(1)) / 1024


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def wait_until(what: str, check: Any, limit: float, every: float = 0.5) -> float:
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise TimeoutError(f"{what}: not reached in {limit:.0f}s")
        await asyncio.sleep(every)


async def run(n: int, hold: float, latency_ms: int) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix="bench-adapter-"))
    stack = Stack(
        var_dir,
        Ports.free(),
        ensure_dev_env(var_dir / "dev.env"),
        pg_fsync=False,
        extra_env={
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": str(latency_ms),
                "PICTURE_SIMULATOR_START_DELAY_MS": "100",
                "PICTURE_SIMULATOR_JITTER": "0",
                "PICTURE_SIMULATOR_MAX_FILES": "100",
            },
            "replicate-adapter": {
                "PICTURE_REPLICATE_WEBHOOK_URL": "",  # no gateway here: polling only
                "PICTURE_REPLICATE_POLL_INTERVAL_SECONDS": "15",
                "PICTURE_REPLICATE_POLL_MAX_INTERVAL_SECONDS": "60",
                "PICTURE_REPLICATE_POLL_MAX_PER_SECOND": "40",
                "PICTURE_LOG_LEVEL": "WARNING",
            },
        },
    )
    stack.start_infra()
    stack.migrate()
    for name in ("replicate-simulator", "replicate-adapter"):
        stack.processes[name] = stack._process(name)
        stack.processes[name].start()
    try:
        for process in stack.processes.values():
            process.wait_ready()
        adapter = stack.processes["replicate-adapter"]
        assert adapter.proc is not None
        pid = adapter.proc.pid
        sim = httpx.AsyncClient(base_url=stack.simulator_url, timeout=30)
        adapter_http = httpx.AsyncClient(base_url=adapter.url, timeout=30)
        assert stack.nats is not None
        bus = await Bus.connect(stack.nats.url, "bench")
        await bus.ensure_streams()

        done: set[uuid.UUID] = set()
        succeeded = 0

        async def on_event(msg: Any) -> None:
            nonlocal succeeded
            event = Envelope.model_validate_json(msg.data).open(PredictionEvent)
            if event.status is not PredictionStatus.STARTED and event.generation_id not in done:
                done.add(event.generation_id)
                succeeded += event.status is PredictionStatus.SUCCEEDED

        await bus.nc.subscribe(PREDICTION_UPDATED.wildcard, cb=on_event)

        async def in_flight() -> float:
            text = (await adapter_http.get("/metrics")).text
            return metric(text, "picture_replicate_predictions_in_flight")

        await asyncio.sleep(2)
        idle_rss = proc_rss_mb(pid)
        (await sim.put("/_control/config", json={"paused": True})).raise_for_status()

        cpu0, t0 = proc_cpu_seconds(pid), time.monotonic()
        users = [uuid.uuid4() for _ in range(50)]
        sem = asyncio.Semaphore(256)

        async def publish(i: int) -> None:
            async with sem:
                await bus.publish(
                    PREDICT,
                    PredictCommand(
                        generation_id=uuid.uuid4(),
                        user_id=users[i % len(users)],
                        attempt=1,
                        model=FLUX,
                        parameters=GenerationParameters(prompt=f"bench {i}", width=1024, height=1024, seed=i),
                    ),
                )

        await asyncio.gather(*(publish(i) for i in range(n)))
        published_s = time.monotonic() - t0

        async def all_followed() -> bool:
            return await in_flight() >= n

        await wait_until("ramp", all_followed, limit=max(600.0, n / 5))
        ramp_total = time.monotonic() - t0
        ramp_cpu = proc_cpu_seconds(pid) - cpu0
        sim_stats = (await sim.get("/_control/stats")).json()

        # Hold: every prediction in flight, the adapter polling at the fallback cadence.
        cpu1, t1 = proc_cpu_seconds(pid), time.monotonic()
        rss_samples = []
        while time.monotonic() - t1 < hold:
            rss_samples.append(proc_rss_mb(pid))
            await asyncio.sleep(1)
        hold_s = time.monotonic() - t1
        hold_cpu = proc_cpu_seconds(pid) - cpu1
        gets_during_hold = (await sim.get("/_control/stats")).json()["gets"] - sim_stats["gets"]
        peak_rss = max(rss_samples)

        # Drain: unpause; every prediction runs its 30 s and is reported terminal.
        (await sim.put("/_control/config", json={"paused": False})).raise_for_status()

        async def all_done() -> bool:
            return len(done) >= n

        drain_s = await wait_until("drain", all_done, limit=latency_ms / 1000 + 300, every=1)
        drain_cpu = proc_cpu_seconds(pid) - cpu1 - hold_cpu
        await bus.close()
        await sim.aclose()
        await adapter_http.aclose()
        per_k = n / 1000
        return {
            "n": n,
            "latency_ms": latency_ms,
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
            "publish_seconds": round(published_s, 1),
            "ramp_seconds": round(ramp_total, 1),
            "ramp_creates_per_second": round(n / ramp_total, 1),
            "ramp_cpu_seconds": round(ramp_cpu, 1),
            "simulator_in_flight_at_peak": sim_stats["in_flight"],
            "simulator_creates": sim_stats["creates"],
            "adapter_rss_idle_mb": round(idle_rss, 1),
            "adapter_rss_peak_mb": round(peak_rss, 1),
            "adapter_rss_mb_per_1000": round((peak_rss - idle_rss) / per_k, 1),
            "hold_seconds": round(hold_s, 1),
            "hold_cpu_percent": round(100 * hold_cpu / hold_s, 1),
            "hold_cpu_percent_per_1000": round(100 * hold_cpu / hold_s / per_k, 2),
            "hold_polls_per_second": round(gets_during_hold / hold_s, 1),
            "drain_seconds_after_unpause": round(drain_s, 1),
            "drain_cpu_seconds": round(drain_cpu, 1),
            "succeeded": succeeded,
            "terminal": len(done),
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=int, default=30_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.n, args.hold, args.latency_ms)), indent=2))


if __name__ == "__main__":
    main()
