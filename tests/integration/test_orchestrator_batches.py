"""Batches and multi-generations through the gateway: progress, cancel, retry, delete, lists."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.integration.conftest import wait_terminal

SHARED = {"model": "flux-schnell", "width": 512, "height": 512}
DONE = {"completed", "partial", "failed"}


async def _wait_batch(api: httpx.AsyncClient, batch_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get(f"/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in DONE:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"batch not finished after {timeout}s: {body['status']}")
        await asyncio.sleep(0.2)


async def _wait_hourly_used(api: httpx.AsyncClient, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (used := (await api.get("/v1/me/limits")).json()["hourly_used"]) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"hourly_used is {used}, expected {expected}")
        await asyncio.sleep(0.1)


async def test_a_batch_with_one_failing_prompt_ends_partial_and_its_retry_completes(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(
        "/v1/batches",
        json={
            "prompts": ["a red fox", "[sim:fail] a broken fox", "a blue whale"],
            "shared_settings": SHARED,
            "batch_name": "animals",
        },
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["kind"], accepted["name"], accepted["total"]) == ("batch", "animals", 3)
    assert accepted["status"] in ("pending", "processing")
    assert [i["index"] for i in accepted["items"]] == [0, 1, 2]
    assert [i["prompt"] for i in accepted["items"]] == [
        "a red fox",
        "[sim:fail] a broken fox",
        "a blue whale",
    ]

    done = await _wait_batch(api, accepted["id"])
    assert done["status"] == "partial"
    assert (done["completed"], done["failed"], done["pending"], done["processing"]) == (2, 1, 0, 0)
    failed = done["items"][1]
    assert failed["status"] == "failed" and failed["error_message"]
    assert all(i["progress"] == 1.0 for i in done["items"])
    assert done["items"][0]["image"]["url"].endswith("/content")

    # Items are ordinary generations, listed by batch.
    listed = (await api.get("/v1/generations", params={"batch_id": accepted["id"]})).json()["data"]
    assert {g["id"] for g in listed} == {i["generation_id"] for i in done["items"]}
    assert all(g["batch_id"] == accepted["id"] for g in listed)

    # Three charged, the failed one refunded once its failure reached the gateway.
    await _wait_hourly_used(api, 2)

    # The retry replaces the failed item at its index (still failing: same prompt marker),
    # a new generation charged like one.
    retried = (await api.post(f"/v1/batches/{accepted['id']}/retry-failed")).json()
    assert (await api.get("/v1/me/limits")).json()["hourly_used"] == 3
    assert retried["items"][1]["generation_id"] != failed["generation_id"]
    assert retried["items"][0]["generation_id"] == done["items"][0]["generation_id"]
    again = await _wait_batch(api, accepted["id"])
    assert again["status"] == "partial" and again["total"] == 3
    old = await wait_terminal(api, failed["generation_id"])
    assert old["status"] == "failed"
    await _wait_hourly_used(api, 2)  # the retry failed too: refunded in turn


async def test_a_multi_generation_runs_one_prompt_with_each_seed(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches", json={"prompt": "a lighthouse", "seeds": [1, 2, 3], "shared_settings": SHARED}
    )
    assert response.status_code == 202, response.text
    batch = await _wait_batch(api, response.json()["id"])
    assert batch["kind"] == "multi" and batch["status"] == "completed"
    assert [i["seed"] for i in batch["items"]] == [1, 2, 3]
    assert len({i["image"]["id"] for i in batch["items"]}) == 3

    counted = await api.post("/v1/batches", json={"prompt": "a tower", "count": 2, "shared_settings": SHARED})
    assert counted.status_code == 202
    assert all(i["seed"] is not None for i in counted.json()["items"])
    await _wait_batch(api, counted.json()["id"])


async def test_cancel_and_delete_a_batch(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches",
        json={"prompts": [f"[sim:slow=20000] slow {i}" for i in range(5)], "shared_settings": SHARED},
    )
    batch_id = response.json()["id"]
    cancelled = await api.post(f"/v1/batches/{batch_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "failed"
    assert all(i["status"] == "cancelled" for i in body["items"])

    page = (await api.get("/v1/batches", params={"limit": 1})).json()
    assert [b["id"] for b in page["data"]] == [batch_id]
    assert page["next_cursor"] is None

    deleted = await api.delete(f"/v1/batches/{batch_id}")
    assert deleted.status_code == 200
    assert (await api.get(f"/v1/batches/{batch_id}")).status_code == 404
    assert (await api.get("/v1/batches")).json()["data"] == []


async def test_invalid_batches_are_refused_with_the_field_named(api: httpx.AsyncClient) -> None:
    one_prompt = await api.post("/v1/batches", json={"prompts": ["only one"], "shared_settings": SHARED})
    assert one_prompt.status_code == 422
    eleven = await api.post("/v1/batches", json={"prompts": ["p"] * 11, "shared_settings": SHARED})
    assert eleven.status_code == 422
    six_seeds = await api.post(
        "/v1/batches", json={"prompt": "p", "seeds": [1, 2, 3, 4, 5, 6], "shared_settings": SHARED}
    )
    assert six_seeds.status_code == 422
    too_wide = await api.post(
        "/v1/batches", json={"prompts": ["a", "b"], "shared_settings": {**SHARED, "width": 4000}}
    )
    assert too_wide.status_code == 422
    assert too_wide.json()["field"] == "shared_settings.width"
