"""Gateway conventions against the real stack: ETag/304 on models, /v1/me (the catalog's
profile, created on first sight), unknown fields refused, problem documents."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.devstack.stack import Stack
from picture.devstack.tokens import mint_token


async def test_models_carry_an_etag_and_answer_304(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        for path in ("/v1/models", "/v1/models/flux-schnell"):
            first = await client.get(path)
            assert first.status_code == 200
            etag = first.headers["etag"]
            assert etag.startswith('"')
            again = await client.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304
            assert again.headers["etag"] == etag
            assert again.content == b""
            other = await client.get(path, headers={"If-None-Match": '"something-else"'})
            assert other.status_code == 200
        missing = await client.get("/v1/models/no-such-model")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_me_is_created_on_first_sight_and_can_be_changed(
    api: httpx.AsyncClient, db: AsyncEngine, user_id: uuid.UUID, stack: Stack
) -> None:
    me = await api.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == str(user_id)
    assert me.json()["email"]
    async with db.connect() as conn:  # the gateway recorded the user
        seen = (
            await conn.execute(text("SELECT count(*) FROM gateway.users WHERE user_id = :u"), {"u": user_id})
        ).scalar_one()
    assert seen == 1
    name = f"u{uuid.uuid4().hex[:10]}"
    changed = await api.patch("/v1/me", json={"username": name, "avatar_url": "https://example.com/a.png"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["username"] == name
    assert changed.json()["avatar_url"] == "https://example.com/a.png"
    # usernames are unique: someone else asking for it gets 409 naming the field
    other = mint_token(stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {other}"}
    ) as client:
        taken = await client.patch("/v1/me", json={"username": name})
    assert taken.status_code == 409, taken.text
    # unknown fields and plain http avatars are refused
    for body, field in (
        ({"is_admin": True}, "body.is_admin"),
        ({"avatar_url": "http://x.example/a.png"}, "avatar_url"),
    ):
        refused = await api.patch("/v1/me", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == field


async def test_first_sight_asks_the_catalog_for_a_profile(stack: Stack, db: AsyncEngine) -> None:
    user = uuid.uuid4()
    token = mint_token(stack.secrets["PICTURE_JWT_SECRET"], user)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        assert (await client.get("/v1/me/limits")).status_code == 200  # no profile read here
    deadline = time.monotonic() + 20
    async with db.connect() as conn:
        while True:
            found = (
                await conn.execute(text("SELECT count(*) FROM catalog.profiles WHERE id = :u"), {"u": user})
            ).scalar_one()
            if found:
                break
            assert time.monotonic() < deadline, "the catalog never created the profile"
            await asyncio.sleep(0.2)


async def test_generation_requests_refuse_unknown_fields(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": "a cat", "user_id": str(uuid.uuid4())}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body.user_id"


WEBHOOK_SECRET = "whsec_dGVzdC13ZWJob29rLXNpZ25pbmctc2VjcmV0LTAxMjM0NTY3ODk="  # conftest's


async def test_webhook_receives_signed_status_events_with_retries(
    api: httpx.AsyncClient, db: AsyncEngine
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    # The terminal state's first delivery fails with 500: it must be retried (an earlier state
    # refused would be dropped once a newer one was sent: never an older state after a newer).
    refused = {"left": 1}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if refused["left"] and json.loads(body)["type"] == "generation.completed":
                refused["left"] -= 1
                self.send_response(500)
            else:
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        accepted = await api.post(
            "/v1/generations", json={"model": "flux-schnell", "prompt": "a webhook", "webhook_url": url}
        )
        assert accepted.status_code == 202, accepted.text
        generation_id = accepted.json()["id"]
        deadline = time.monotonic() + 60
        while not any(json.loads(b)["type"] == "generation.completed" for _, b in received):
            assert time.monotonic() < deadline, f"no completed webhook: {[b for _, b in received]}"
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + 60
        while True:  # the refused delivery is retried after a delay: wait for every one to land
            async with db.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT status, attempts, last_error FROM gateway.webhook_deliveries "
                            "WHERE generation_id = :g ORDER BY event_seq"
                        ),
                        {"g": generation_id},
                    )
                ).all()
            if rows and all(r.status in ("delivered", "superseded") for r in rows):
                break
            assert time.monotonic() < deadline, rows
            await asyncio.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    for headers, body in received:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        assert json.loads(body)["data"]["id"] == generation_id
    assert max(r.attempts for r in rows) >= 2  # the refused one was retried
    assert sum(r.attempts for r in rows) == len(rows) + 1
    # what the client received never goes back
    progress = [json.loads(body)["data"]["progress"] for _, body in received]
    assert progress == sorted(progress), progress
    assert json.loads(received[-1][1])["type"] == "generation.completed"


async def test_webhook_url_is_validated(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/generations", json={"model": "flux-schnell", "prompt": "x", "webhook_url": "ftp://example.com/x"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "webhook_url"
