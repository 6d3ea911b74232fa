"""Outgoing webhooks: SSRF-safe targets and Standard Webhooks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from picture.common.settings import Environment
from picture.gateway.settings import GatewaySettings
from picture.gateway.webhooks import Dispatcher, UnsafeTarget, check_target, sign, signing_key

STRICT = GatewaySettings(jwt_secret=None, jwks_url="https://x.supabase.co/jwks")


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # plain http
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://user:pass@93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
        "https:///nohost",
        "https://93.184.216.34:99999/hook",
        "https://" + "a" * 3000 + ".example/hook",
    ],
)
async def test_unsafe_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await check_target(url, STRICT)


async def test_a_public_https_address_is_accepted() -> None:
    await check_target("https://93.184.216.34/hook", STRICT)


async def test_private_targets_only_when_allowed_and_never_in_production() -> None:
    relaxed = GatewaySettings(jwks_url="https://x/jwks", webhook_allow_private_targets=True)
    await check_target("http://127.0.0.1:9/hook", relaxed)
    production = relaxed.model_copy(update={"environment": Environment.PRODUCTION})
    with pytest.raises(UnsafeTarget):
        await check_target("http://127.0.0.1:9/hook", production)


def test_signature_is_standard_webhooks() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(b"k" * 24, b"msg_1.1700000000." + body, hashlib.sha256).digest())
    assert sign(signing_key(secret), "msg_1", 1700000000, body) == "v1," + expected.decode()


@pytest.fixture
def loopback_listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on 127.0.0.1 that records every connection made to it."""
    connections: list[str] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            connections.append(peer[0])
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], connections
    finally:
        stop.set()
        thread.join()
        server.close()


async def test_dns_rebinding_cannot_redirect_a_webhook_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch, loopback_listener: tuple[int, list[str]]
) -> None:
    """The name answers a public address at the check, then 127.0.0.1: the POST goes to the
    address that was checked (or nowhere), never to the private one, and the name is resolved
    once."""
    port, connections = loopback_listener
    host = "hooks.rebinding.test"
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_getaddrinfo(name: Any, *args: Any, **kwargs: Any) -> Any:
        if name not in (host, host.encode()):
            return real_getaddrinfo(name, *args, **kwargs)
        answer = "93.184.216.34" if not lookups else "127.0.0.1"
        lookups.append(answer)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    settings = STRICT.model_copy(
        update={
            "webhook_signing_secret": "whsec_" + base64.b64encode(b"k" * 24).decode(),
            "webhook_timeout_seconds": 1.0,
        }
    )
    dispatcher = Dispatcher(cast(AsyncEngine, None), settings)
    try:
        with pytest.raises(httpx.HTTPError):  # the public address is not reachable from here
            await dispatcher.post(f"https://{host}:{port}/hook", "msg_1", {"type": "generation.completed"})
    finally:
        await dispatcher.aclose()
    assert connections == []
    assert lookups == ["93.184.216.34"]
