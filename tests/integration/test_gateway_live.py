"""Live updates against the real stack: SSE per generation (resumable with Last-Event-ID) and
the per-user WebSocket."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import wait_terminal

GOOD = {"model": "flux-schnell", "prompt": "a lighthouse", "width": 512, "height": 512}
TERMINAL = {"completed", "failed", "cancelled"}


@dataclass
class Event:
    id: int | None
    event: str
    data: dict[str, Any]


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Event(
                    int(fields["id"]) if "id" in fields else None,
                    fields.get("event", "message"),
                    json.loads(fields["data"]),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def follow(
    api: httpx.AsyncClient,
    generation_id: str,
    last_event_id: int | None = None,
    stop_after: int | None = None,
) -> list[Event]:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    seen: list[Event] = []
    async with asyncio.timeout(60):
        async with api.stream("GET", f"/v1/generations/{generation_id}/events", headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in events(response):
                seen.append(event)
                if stop_after is not None and len(seen) >= stop_after:
                    break
    return seen


async def test_sse_follows_a_generation_and_resumes_without_gaps(api: httpx.AsyncClient) -> None:
    accepted = await api.post("/v1/generations", json=GOOD)
    assert accepted.status_code == 202, accepted.text
    generation_id = accepted.json()["id"]

    first = await follow(api, generation_id, stop_after=1)  # disconnects after the current state
    assert first[0].event == "generation"
    assert first[0].data["id"] == generation_id
    assert first[0].id is not None
    resumed = await follow(api, generation_id, last_event_id=first[0].id)
    assert resumed[-1].data["status"] == "completed"
    assert resumed[-1].data["progress"] == 1.0
    assert resumed[-1].data["image"] is not None

    # everything ever published for it, from the start: the resumed stream missed nothing
    everything = await follow(api, generation_id, last_event_id=0)
    statuses = [e.data["status"] for e in everything]
    assert statuses[0] in ("pending", "queued")
    assert {"queued", "processing", "completed"} <= set(statuses)
    assert statuses[-1] == "completed"
    ids = [e.id for e in everything]
    assert ids == sorted(ids)
    assert [e.id for e in resumed] == [i for i in ids if i is not None and i > first[0].id]

    # resuming after the last event of a finished generation: 204, the browser stops
    last = await api.get(f"/v1/generations/{generation_id}/events", headers={"Last-Event-ID": str(ids[-1])})
    assert last.status_code == 204
    # a fresh stream of a finished generation: its final state, then the end
    done = await follow(api, generation_id)
    assert [e.data["status"] for e in done] == ["completed"]


async def test_sse_of_another_users_generation_is_404(api: httpx.AsyncClient, stack: Stack) -> None:
    accepted = await api.post("/v1/generations", json=GOOD)
    other = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {other}"}
    ) as client:
        response = await client.get(f"/v1/generations/{accepted.json()['id']}/events")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        bad = await api.get(f"/v1/generations/{accepted.json()['id']}/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422
        assert bad.json()["field"] == "Last-Event-ID"
    await wait_terminal(api, accepted.json()["id"])


async def test_websocket_streams_the_users_events(api: httpx.AsyncClient, stack: Stack, token: str) -> None:
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/v1/ws"
    async with connect(ws_url, subprotocols=["bearer", token]) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "bearer"
        async with connect(f"{ws_url}?access_token={token}") as by_query:
            for client in (socket, by_query):
                assert json.loads(await client.recv())["type"] == "ready"
            accepted = await api.post("/v1/generations", json=GOOD)
            generation_id = accepted.json()["id"]
            for client in (socket, by_query):
                statuses = []
                async with asyncio.timeout(60):
                    while not statuses or statuses[-1] not in TERMINAL:
                        frame = json.loads(await client.recv())
                        if frame["type"] == "generation":
                            assert frame["generation"]["id"] == generation_id
                            assert isinstance(frame["seq"], int)
                            statuses.append(frame["generation"]["status"])
                assert statuses[-1] == "completed"
                assert "processing" in statuses


async def test_websocket_without_a_valid_token_is_refused(stack: Stack) -> None:
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/v1/ws"
    for url in (ws_url, f"{ws_url}?access_token=not-a-token"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 403


async def test_sse_follows_a_batch_to_the_end(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/batches",
        json={
            "prompts": ["a red fox", "a blue whale"],
            "shared_settings": {"model": "flux-schnell", "width": 512, "height": 512},
        },
    )
    assert created.status_code in (200, 201, 202), created.text
    batch_id = created.json()["id"]
    seen: list[Event] = []
    async with asyncio.timeout(90):
        async with api.stream("GET", f"/v1/batches/{batch_id}/events") as response:
            assert response.status_code == 200, await response.aread()
            async for event in events(response):
                seen.append(event)
    assert seen[0].event == "batch"
    assert seen[0].data["total"] == 2
    item_events = [e for e in seen if e.event == "generation"]
    assert item_events and all(e.data["batch_id"] == batch_id for e in item_events)
    assert [e.id for e in item_events] == sorted(e.id for e in item_events)
    assert seen[-1].event == "batch"
    assert seen[-1].data["status"] == "completed"
    assert seen[-1].data["completed"] == 2
