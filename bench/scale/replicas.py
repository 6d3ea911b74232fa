"""Throughput and CPU per generation with 1 and with 2 replicas of every service, on this machine.

For each shape (``--shapes 1,2``: replicas of every service) a fresh devstack ``Stack`` is
started (limits raised, the simulator at a fixed latency, no jitter, ``--nats-nodes`` NATS
servers), warmed up, then driven by the shared client (``../shared/bench/drive.py``): with two
gateway replicas, one driver per gateway replica with its share of the generations and of the
concurrency, as clients behind a load balancer would be. Prints one JSON line per shape: the
drivers' figures combined (completed, failed, makespan, throughput, worst p50/p99), CPU
milliseconds per generation by service (replicas summed) and in total (the simulator left
out), the load average before and after, and ``nproc``.

Run from the project root with its venv:

    .venv/bin/python bench/scale/replicas.py -n 100 -c 20 --predict-ms 3000 --poll-s 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from picture.devstack.cpu import ms_per_item, tree_cpu_seconds
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import SERVICES, Ports, Stack
from picture.devstack.tokens import mint_token

ROOT = Path(__file__).resolve().parents[2]


def _find_drive() -> Path:
    """``$DRIVE_PY_SCRIPT``, else ``shared/bench/drive.py`` next to the project (or to the
    folder of its worktrees)."""
    if "DRIVE_PY_SCRIPT" in os.environ:
        return Path(os.environ["DRIVE_PY_SCRIPT"])
    for parent in ROOT.parents:
        candidate = parent / "shared/bench/drive.py"
        if candidate.exists():
            return candidate
    raise SystemExit("drive.py not found: set DRIVE_PY_SCRIPT")


DRIVE_PY = _find_drive()


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100, help="generations per shape")
    ap.add_argument("-c", type=int, default=20, help="concurrent clients (split over the gateways)")
    ap.add_argument("--predict-ms", type=int, default=3000)
    ap.add_argument("--poll-s", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--shapes", default="1,2", help="replicas of every service, one run each")
    ap.add_argument("--nats-nodes", type=int, default=1)
    return ap.parse_args()


def _drive(url: str, n: int, c: int, tokens: Path, a: argparse.Namespace) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        str(DRIVE_PY),
        "ours",
        "--url",
        url,
        "-n",
        str(n),
        "-c",
        str(c),
        "--predict-s",
        str(a.predict_ms / 1000),
        "--size",
        str(a.size),
        "--poll-s",
        str(a.poll_s),
        "--tokens",
        str(tokens),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=1800)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"the driver printed no result:\n{out[-2000:]}\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _drive_all(urls: list[str], n: int, c: int, tokens: Path, a: argparse.Namespace) -> dict[str, Any]:
    """One driver per gateway, started together; their figures combined."""
    began = time.monotonic()
    procs = [
        _drive(url, share_n, share_c, tokens, a)
        for url, share_n, share_c in zip(urls, _split(n, len(urls)), _split(c, len(urls)), strict=True)
    ]
    parts = [_result(p) for p in procs]
    wall = time.monotonic() - began
    completed = sum(p.get("completed", 0) for p in parts)
    makespan = max((p.get("makespan_s", wall) for p in parts), default=wall)
    combined: dict[str, Any] = {
        "drivers": len(parts),
        "completed": completed,
        "failed": sum(p.get("failed", 0) for p in parts),
        "rejected": sum(p.get("rejected", 0) for p in parts),
        "timeouts": sum(p.get("timeouts", 0) for p in parts),
        "makespan_s": round(makespan, 2),
        "throughput_per_s": round(completed / makespan, 2) if makespan else None,
    }
    for key in (
        "submit_p50_ms",
        "submit_p99_ms",
        "e2e_p50_s",
        "e2e_p99_s",
        "overhead_p50_ms",
        "overhead_p99_ms",
    ):
        values = [p[key] for p in parts if p.get(key) is not None]
        combined[key] = max(values) if values else None  # the worse gateway
    return combined


def _service_of(process: str) -> str:
    """``media-2`` -> ``media``; ``nats-3`` -> ``nats``."""
    return re.sub(r"-\d+$", "", process)


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_shape(replicas: int, a: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        var = Path(tmp)
        secrets = ensure_dev_env(var / "dev.env")
        stack = Stack(
            var,
            Ports.free(),
            secrets,
            replicas=dict.fromkeys(SERVICES, replicas),
            nats_nodes=a.nats_nodes,
            extra_env={
                "replicate-simulator": {
                    "PICTURE_SIMULATOR_LATENCY_MS": str(a.predict_ms),
                    "PICTURE_SIMULATOR_START_DELAY_MS": "0",
                    "PICTURE_SIMULATOR_JITTER": "0",
                },
                "orchestrator": {"PICTURE_GLOBAL_CONCURRENCY": "1000", "PICTURE_PER_USER_CONCURRENCY": "100"},
                "gateway": {
                    "PICTURE_MAX_CONCURRENT": "1000",
                    "PICTURE_HOURLY_LIMIT": "100000",
                    "PICTURE_DAILY_LIMIT": "100000",
                    "PICTURE_RATE_LIMIT_PER_MINUTE": "100000",
                },
            },
        )
        started = time.monotonic()
        stack.start()
        try:
            start_s = time.monotonic() - started
            tokens = var / "tokens.txt"
            tokens.write_text(
                "\n".join(mint_token(secrets["PICTURE_JWT_SECRET"], uuid.uuid4()) for _ in range(a.c))
            )
            urls = stack.gateway_urls
            _drive_all(urls, max(a.c, 20), a.c, tokens, a)  # warm-up
            load_before = _loadavg()
            roots = stack.pids()
            before = tree_cpu_seconds(roots)
            result = _drive_all(urls, a.n, a.c, tokens, a)
            after = tree_cpu_seconds(roots)
            per = ms_per_item(before, after, max(1, result["completed"]))
            by_service: dict[str, float] = {}
            for process, ms in per.items():
                by_service[_service_of(process)] = by_service.get(_service_of(process), 0.0) + ms
            result = {
                "replicas": replicas,
                "nats_nodes": a.nats_nodes,
                "n": a.n,
                "concurrency": a.c,
                "predict_ms": a.predict_ms,
                "poll_s": a.poll_s,
                **result,
                "cpu_ms_per_generation_by_service": {
                    k: round(v, 1) for k, v in sorted(by_service.items(), key=lambda kv: -kv[1])
                },
                "cpu_ms_per_generation_excl_simulator": round(
                    sum(v for k, v in by_service.items() if "simulator" not in k), 1
                ),
                "cpu_ms_per_generation_services": round(
                    sum(v for k, v in by_service.items() if k in SERVICES), 1
                ),
                "stack_start_s": round(start_s, 1),
                "loadavg_before": load_before,
                "loadavg_after": _loadavg(),
                "nproc": os.cpu_count(),
            }
            return result
        finally:
            stack.stop()


def main() -> None:
    a = _args()
    for shape in (int(s) for s in a.shapes.split(",") if s.strip()):
        print(json.dumps(run_shape(shape, a)), flush=True)


if __name__ == "__main__":
    main()
