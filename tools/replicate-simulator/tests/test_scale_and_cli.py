"""Many predictions in flight at once, and the console script."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from picture.replicate_simulator.server import bind_free_port
from picture.replicate_simulator.settings import SimulatorSettings


async def test_thousand_predictions_in_flight(sim: SimulatorSettings) -> None:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": "Bearer t"}, limits=limits, timeout=30
    ) as api:
        await api.put("/_control/config", json={"paused": True})
        body = {"version": "v", "input": {"prompt": "crowd", "width": 64, "height": 64}}
        created = await asyncio.gather(*(api.post("/v1/predictions", json=body) for _ in range(1000)))
        assert {r.status_code for r in created} == {201}
        stats = (await api.get("/_control/stats")).json()
        assert stats["in_flight"] == 1000
        assert stats["by_status"]["starting"] == 1000
        await api.put("/_control/config", json={"paused": False})
        deadline = time.monotonic() + 30
        while (await api.get("/_control/stats")).json()["by_status"]["succeeded"] < 1000:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)


def test_console_script() -> None:
    sock = bind_free_port()
    port = sock.getsockname()[1]
    sock.close()
    script = shutil.which("picture-replicate-simulator", path=str(Path(sys.executable).parent))
    assert script is not None
    env = os.environ | {"PICTURE_SIMULATOR_TOKEN": "cli-token"}
    process = subprocess.Popen([script, "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/v1/account",
                    headers={"Authorization": "Bearer cli-token"},
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        wrong = httpx.get(f"http://127.0.0.1:{port}/v1/account", headers={"Authorization": "Bearer other"})
        assert wrong.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
