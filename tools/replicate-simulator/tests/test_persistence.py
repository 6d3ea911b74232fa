"""A simulator with a data folder keeps its predictions and files across a restart: finished
ones are still listed and served, in-flight ones continue from their created_at."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from picture.replicate_simulator.server import running_simulator
from picture.replicate_simulator.settings import SimulatorSettings

AUTH = {"Authorization": "Bearer t"}


def _wait(http: httpx.Client, prediction_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"/v1/predictions/{prediction_id}").json()
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_predictions_and_files_outlive_a_restart(
    tmp_path: Path, fast_settings: Callable[..., SimulatorSettings]
) -> None:
    settings = fast_settings(data_dir=tmp_path)
    with running_simulator(settings) as first, httpx.Client(base_url=first.base_url, headers=AUTH) as http:
        done = http.post(
            "/v1/predictions", json={"version": "v", "input": {"prompt": "done", "width": 64, "height": 64}}
        ).json()
        done = _wait(http, done["id"], "succeeded")
        slow = http.post(
            "/v1/predictions",
            json={"version": "v", "input": {"prompt": "[sim:slow=3000] slow", "width": 64, "height": 64}},
        ).json()
        _wait(http, slow["id"], "processing")
    down_at = datetime.now(UTC)
    with running_simulator(settings) as second, httpx.Client(base_url=second.base_url, headers=AUTH) as http:
        listed = [p["id"] for p in http.get("/v1/predictions").json()["results"]]
        assert listed == [slow["id"], done["id"]]
        # The file URL of before the restart still works (its path; the port is new here).
        path = done["output"][0].split("/delivery/", 1)[1]
        assert http.get(f"/delivery/{path}").status_code == 200
        finished = _wait(http, slow["id"], "succeeded")
        created = datetime.fromisoformat(finished["created_at"])
        completed = datetime.fromisoformat(finished["completed_at"])
        assert datetime.fromisoformat(finished["started_at"]) < down_at  # kept, not restarted
        # Its timeline continued from created_at: about 3 s in all, not 3 s after the restart.
        assert completed - created < timedelta(seconds=3) + (datetime.now(UTC) - down_at)
        assert finished["logs"].count("4/4") == 1
        again = http.post("/v1/predictions", json={"version": "v", "input": {"prompt": "new"}}).json()
        assert http.get("/v1/predictions").json()["results"][0]["id"] == again["id"]


def test_list_filters_by_creation_time(api: httpx.Client) -> None:
    first = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "a"}}).json()
    second = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "b"}}).json()
    after = api.get("/v1/predictions", params={"created_after": second["created_at"]}).json()
    assert [p["id"] for p in after["results"]] == [second["id"]]
    before = api.get("/v1/predictions", params={"created_before": second["created_at"]}).json()
    assert [p["id"] for p in before["results"]] == [first["id"]]
