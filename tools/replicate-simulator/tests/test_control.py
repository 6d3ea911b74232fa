"""The /_control test API: forced statuses and timeouts, pause, stats, reset, file expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from replicate.client import Client
from replicate.exceptions import ReplicateError

from picture.devstack.waiting import eventually_sync
from picture.replicate_simulator.server import running_simulator
from picture.replicate_simulator.settings import SimulatorSettings

Control = Callable[..., dict[str, Any]]
Waiter = Callable[..., dict[str, Any]]


def test_config_roundtrip(sim: SimulatorSettings, control: Control) -> None:
    initial = httpx.get(f"{sim.base_url}/_control/config").json()
    assert initial["latency_ms"] == 150
    assert initial["paused"] is False
    assert initial["force_status"] is None
    updated = control(latency_ms=300, jitter=0.1)
    assert (updated["latency_ms"], updated["jitter"], updated["start_delay_ms"]) == (300, 0.1, 20)
    bad = httpx.put(f"{sim.base_url}/_control/config", json={"failure_rate": 2})
    assert bad.status_code == 422


def test_force_429(api: httpx.Client, control: Control) -> None:
    control(force_status=429, force_count=2)
    for _ in range(2):
        response = api.get("/v1/predictions")
        assert response.status_code == 429
        assert response.json() == {"detail": "Request was throttled. Your rate limit resets in ~30s."}
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.headers["ratelimit-reset"] == "30"
        assert "retry-after" not in response.headers
    assert api.get("/v1/predictions").status_code == 200


@pytest.mark.parametrize("status", [500, 503])
def test_force_server_error_is_problem(api: httpx.Client, control: Control, status: int) -> None:
    control(force_status=status)
    response = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "x"}})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    stats = httpx.get(str(api.base_url.join("/_control/stats"))).json()
    assert stats["creates"] == 0
    assert stats["requests"] == 1  # the forced answer is counted as a request that arrived
    assert api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "x"}}).is_success
    assert httpx.get(str(api.base_url.join("/_control/stats"))).json()["requests"] == 2


def test_retry_after_header_when_configured(
    fast_settings: Callable[..., SimulatorSettings],
) -> None:
    with running_simulator(fast_settings(retry_after_seconds=3)) as settings:
        httpx.put(f"{settings.base_url}/_control/config", json={"force_status": 429})
        response = httpx.get(f"{settings.base_url}/v1/account", headers={"Authorization": "Token t"})
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"


def test_force_timeout_still_creates(api: httpx.Client, control: Control) -> None:
    control(force_timeout_ms=1500, force_count=1)
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            "/v1/predictions",
            json={"version": "v", "input": {"prompt": "lost reply"}},
            timeout=httpx.Timeout(5.0, read=0.3),
        )
    listed = api.get("/v1/predictions").json()["results"]
    assert [p["input"]["prompt"] for p in listed] == ["lost reply"]
    started = time.monotonic()
    api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "fast"}})
    assert time.monotonic() - started < 1.0


def test_paused_stays_starting(api: httpx.Client, control: Control, wait_terminal: Waiter) -> None:
    control(paused=True)
    created = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "p"}}).json()
    time.sleep(0.5)  # nothing may move it on for a while: a window of silence, so a sleep is the check
    assert api.get(f"/v1/predictions/{created['id']}").json()["status"] == "starting"
    control(paused=False)
    assert wait_terminal(created["id"])["status"] == "succeeded"


def test_stats_and_reset(api: httpx.Client, sim: SimulatorSettings, wait_terminal: Waiter) -> None:
    done = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "a"}}).json()
    hung = api.post("/v1/predictions", json={"version": "v", "input": {"prompt": "[sim:hang]"}})
    wait_terminal(done["id"])
    api.get("/v1/predictions")
    stats = httpx.get(f"{sim.base_url}/_control/stats").json()
    assert stats["creates"] == 2
    assert stats["lists"] == 1
    assert stats["gets"] >= 1
    assert stats["in_flight"] == 1
    assert stats["by_status"]["succeeded"] == 1
    api.post(f"/v1/predictions/{hung.json()['id']}/cancel")
    stats = httpx.get(f"{sim.base_url}/_control/stats").json()
    assert (stats["cancels"], stats["in_flight"], stats["by_status"]["canceled"]) == (1, 0, 1)
    httpx.post(f"{sim.base_url}/_control/reset").raise_for_status()
    assert api.get("/v1/predictions").json()["results"] == []
    assert httpx.get(f"{sim.base_url}/_control/stats").json()["creates"] == 0


def test_output_url_expires(fast_settings: Callable[..., SimulatorSettings]) -> None:
    with running_simulator(fast_settings(output_ttl_seconds=0.5)) as settings:
        body = httpx.post(
            f"{settings.base_url}/v1/models/black-forest-labs/flux-schnell/predictions",
            json={"input": {"prompt": "ephemeral", "width": 64, "height": 64}},
            headers={"Authorization": "Bearer t", "Prefer": "wait"},
        ).json()
        url = body["output"][0]
        assert httpx.get(url).status_code == 200
        assert httpx.get(url.replace("/out-0.webp", "/out-1.webp")).status_code == 404

        def expired_output() -> httpx.Response | None:
            response = httpx.get(url)
            return response if response.status_code == 404 else None

        expired = eventually_sync(expired_output, timeout=5, what="the output's expiry after 0.5 s")
        assert expired.status_code == 404
        assert expired.headers["content-type"] == "application/problem+json"
        removed = httpx.get(body["urls"]["get"], headers={"Authorization": "Bearer t"}).json()
        assert removed["data_removed"] is True
        assert removed["output"] is None
        assert removed["status"] == "succeeded"


def test_run_timeout(fast_settings: Callable[..., SimulatorSettings]) -> None:
    with running_simulator(fast_settings(run_timeout_seconds=0.3)) as settings:
        body = httpx.post(
            f"{settings.base_url}/v1/predictions",
            json={"version": "v", "input": {"prompt": "[sim:hang]"}},
            headers={"Authorization": "Bearer t", "Prefer": "wait=5"},
        ).json()
        assert body["status"] == "failed"
        assert body["error"] == "Prediction timed out"


def test_official_client_retries_throttled_get(sim: SimulatorSettings, control: Control) -> None:
    client = Client(api_token="x", base_url=sim.base_url)
    try:
        prediction = client.predictions.create(version="v", input={"prompt": "x"})
        control(force_status=429, force_count=2)
        assert client.predictions.get(prediction.id).id == prediction.id
        assert httpx.get(f"{sim.base_url}/_control/config").json()["force_count"] == 0
        control(force_status=429, force_count=1)
        with pytest.raises(ReplicateError) as info:  # creates are never retried
            client.predictions.create(version="v", input={"prompt": "y"})
        assert info.value.status == 429
    finally:
        client._client.close()


def test_tampered_delivery_token(api: httpx.Client) -> None:
    body = api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "t", "width": 64, "height": 64}},
        headers={"Prefer": "wait"},
    ).json()
    url: str = body["output"][0]
    prefix, token, name = url.rsplit("/", 2)
    file_id, expiry, signature = token.split(".")
    forged = f"{prefix}/{file_id}.{int(expiry) + 3600}.{signature}/{name}"
    assert httpx.get(forged).status_code == 404
