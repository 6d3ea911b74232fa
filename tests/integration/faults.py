"""What the fault tests share: the short orchestrator limits and generous gateway limits of a
crash stack, clients that submit until accepted, the simulator's predictions, and how a
generation failed by a fault is told from one failed by a bug."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token

DOWNLOAD_BUDGET = "5"
PER_USER = 3

SHORT = {
    "PICTURE_RETRY_DELAYS_SECONDS": "[0.2, 0.5, 1.0]",
    "PICTURE_SWEEP_INTERVAL_SECONDS": "1",
    "PICTURE_STUCK_DISPATCHED_SECONDS": "8",
    "PICTURE_STUCK_PROCESSING_SECONDS": "15",
    "PICTURE_STUCK_DOWNLOADING_SECONDS": "8",
    # the sweeper resumes a download only after media's budget: keep both short here
    "PICTURE_INGEST_DOWNLOAD_BUDGET_SECONDS": DOWNLOAD_BUDGET,
    "PICTURE_STUCK_DOWNLOADING_MARGIN_SECONDS": "3",
    "PICTURE_GLOBAL_CONCURRENCY": "20",
    "PICTURE_PER_USER_CONCURRENCY": str(PER_USER),
}
GATEWAY = {"PICTURE_MAX_CONCURRENT": "100", "PICTURE_HOURLY_LIMIT": "1000", "PICTURE_DAILY_LIMIT": "1000"}
TERMINAL = {"completed", "failed", "cancelled"}


def client_for(
    stack: Stack, user_id: uuid.UUID, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], user_id)
    return httpx.AsyncClient(
        base_url=stack.gateway_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        transport=transport,
    )


async def submit(api: httpx.AsyncClient, index: int, run: str) -> str:
    """POST with an Idempotency-Key until accepted: the stack may be down for a moment."""
    deadline = time.monotonic() + 60
    body = {"model": "flux-schnell", "prompt": f"crash {run} {index}", "width": 256, "height": 256}
    while True:
        try:
            response = await api.post(
                "/v1/generations", json=body, headers={"Idempotency-Key": f"{run}-{index}"}
            )
            if response.status_code == 202:
                generation_id: str = response.json()["id"]
                return generation_id
            assert response.status_code >= 500, response.text
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"generation {index} not accepted within 60 s")
        await asyncio.sleep(0.3)


async def simulator_predictions(stack: Stack) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    url: str | None = f"{stack.simulator_url}/v1/predictions"
    async with httpx.AsyncClient(headers={"Authorization": "Bearer simulator-token"}, timeout=10) as client:
        while url:
            page = (await client.get(url)).json()
            results += page["results"]
            url = page["next"]
    return results


# How a generation may end failed in the crash run: the faults make errors transient (a killed
# service, NATS or PostgreSQL down) and retries can run out; a message redelivered past its
# limit is poisoned; a generation held up too long hits a deadline. Nothing else fails here
# (plain prompts, a simulator told to succeed).
FAULT_ENDINGS = {"poison_message", "timeout", "start_deadline"}


def failed_by_a_fault(error_code: str, errors: list[Any]) -> bool:
    """``errors``: the generation's rows of orchestrator.generation_errors, oldest first."""
    if error_code in FAULT_ENDINGS:
        return True
    last = errors[-1] if errors else None
    return last is not None and last.error_kind == "transient" and last.recovery_action == "fail"


def readable(message: str | None) -> bool:
    """A sentence for a user: no traceback, no object repr, not a dump."""
    return bool(
        message
        and message.isprintable()
        and len(message) <= 500
        and "Traceback" not in message
        and " object at 0x" not in message
    )


async def all_terminal(
    stack: Stack, ids: list[str], owner: dict[str, httpx.AsyncClient], timeout: float
) -> dict[str, str]:
    """Every generation's status once all are terminal (read through the API as their owners;
    a request that fails while the stack recovers is tried again). Past ``timeout`` seconds,
    the processes' log tails are printed and the test fails with the statuses seen."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while True:
        for gid in ids:
            if statuses.get(gid) in TERMINAL:
                continue  # terminal is final
            try:
                response = await owner[gid].get(f"/v1/generations/{gid}")
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                statuses[gid] = response.json()["status"]
        if len(statuses) == len(ids) and set(statuses.values()) <= TERMINAL:
            return statuses
        if time.monotonic() > deadline:
            for process in stack.processes.values():
                print(f"--- {process.name}\n{process.log_tail(15)}")
            raise AssertionError(f"not all terminal: {Counter(statuses.values())}")
        await asyncio.sleep(0.5)
