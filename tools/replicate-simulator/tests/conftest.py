"""Shared fixtures: a simulator served by uvicorn in a background thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from picture.replicate_simulator.server import running_simulator
from picture.replicate_simulator.settings import SimulatorSettings

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}


def _fast_settings(**overrides: Any) -> SimulatorSettings:
    """Small latencies so the suite stays quick."""
    values: dict[str, Any] = {
        "latency_ms": 150,
        "start_delay_ms": 20,
        "jitter": 0.0,
        "webhook_backoff_seconds": 0.2,
    }
    values.update(overrides)
    return SimulatorSettings(**values)


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorSettings]:
    """The shared simulator (reset before each test)."""
    with running_simulator(_fast_settings()) as settings:
        yield settings


@pytest.fixture
def fast_settings() -> Callable[..., SimulatorSettings]:
    """Factory of settings for a dedicated simulator."""
    return _fast_settings


@pytest.fixture(autouse=True)
def _reset(sim: SimulatorSettings) -> None:
    httpx.post(f"{sim.base_url}/_control/reset").raise_for_status()


@pytest.fixture
def api(sim: SimulatorSettings) -> Iterator[httpx.Client]:
    """A plain HTTP client with a valid token."""
    with httpx.Client(
        base_url=sim.base_url, headers={"Authorization": "Bearer test-token"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def wait_terminal(api: httpx.Client) -> Callable[[str], dict[str, Any]]:
    """Poll a prediction until it is terminal."""

    def _wait(prediction_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = api.get(f"/v1/predictions/{prediction_id}").json()
            if body["status"] in TERMINAL:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"prediction not terminal: {body}")
            time.sleep(0.02)

    return _wait


@pytest.fixture
def control(sim: SimulatorSettings) -> Callable[..., dict[str, Any]]:
    """PUT /_control/config with keyword arguments."""

    def _put(**values: Any) -> dict[str, Any]:
        response = httpx.put(f"{sim.base_url}/_control/config", json=values)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    return _put
