"""Webhook delivery: events, Standard Webhooks signatures, retries, filters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from picture.replicate_simulator.server import bind_free_port, serve_in_thread
from picture.replicate_simulator.webhooks import sign


@dataclass
class Receiver:
    """A tiny webhook receiver app; answers 500 to the first ``fail_first`` requests."""

    url: str = ""
    fail_first: int = 0
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b, status in self.requests if status == 200]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {self.requests}")
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        with state.lock:
            status = 500 if state.fail_first > 0 else 200
            state.fail_first -= 1
            state.requests.append((dict(request.headers), body, status))
        return Response(status_code=status)

    sock = bind_free_port()
    state.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    with serve_in_thread(app, sock):
        yield state


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """Independent Standard Webhooks verification."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def _statuses(receiver: Receiver) -> list[str]:
    return [httpx.Response(200, content=b).json()["status"] for _, b in receiver.accepted()]


def test_sign_matches_standard_webhooks_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_start_and_completed_signed(api: httpx.Client, receiver: Receiver) -> None:
    secret = api.get("/v1/webhooks/default/secret").json()["key"]
    created = api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "hook"}, "webhook": receiver.url},
    ).json()
    receiver.wait_for(lambda r: "succeeded" in _statuses(r))
    accepted = receiver.accepted()
    assert _statuses(receiver)[0] == "starting"
    for headers, body in accepted:
        assert headers["webhook-id"].startswith("msg_")
        assert verify(secret, headers, body)
        assert not verify(secret, headers, body + b" ")
        assert httpx.Response(200, content=body).json()["id"] == created["id"]
    final = httpx.Response(200, content=accepted[-1][1]).json()
    assert final["output"] == api.get(f"/v1/predictions/{created['id']}").json()["output"]
    assert len({h["webhook-id"] for h, _ in accepted}) == len(accepted)


def test_retry_keeps_webhook_id(api: httpx.Client, receiver: Receiver) -> None:
    receiver.fail_first = 1
    api.post(
        "/v1/predictions",
        json={
            "version": "v",
            "input": {"prompt": "retry"},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        },
    )
    receiver.wait_for(lambda r: len(r.accepted()) == 1)
    with receiver.lock:
        attempts = list(receiver.requests)
    assert [status for _, _, status in attempts] == [500, 200]
    assert attempts[0][0]["webhook-id"] == attempts[1][0]["webhook-id"]
    assert httpx.Response(200, content=attempts[1][1]).json()["status"] == "succeeded"
    stats = httpx.get(str(api.base_url.join("/_control/stats"))).json()
    assert stats["webhooks_failed"] == 1
    assert stats["webhooks_sent"] == 1


def test_events_filter_completed_only(api: httpx.Client, receiver: Receiver) -> None:
    api.post(
        "/v1/models/a/b/predictions",
        json={
            "input": {"prompt": "only done [sim:fail]"},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        },
        headers={"Prefer": "wait"},
    )
    receiver.wait_for(lambda r: len(r.accepted()) >= 1)
    time.sleep(0.3)  # no other event may follow: a window of silence, so a sleep is the check
    assert _statuses(receiver) == ["failed"]


def test_drop_webhooks(api: httpx.Client, receiver: Receiver, control: Callable[..., dict[str, Any]]) -> None:
    control(drop_webhooks=True)
    api.post(
        "/v1/predictions",
        json={"version": "v", "input": {"prompt": "quiet"}, "webhook": receiver.url},
        headers={"Prefer": "wait"},
    )
    time.sleep(0.3)  # nothing may arrive: a window of silence, so a sleep is the check
    assert receiver.requests == []
