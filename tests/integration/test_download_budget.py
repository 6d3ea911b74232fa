"""One download of a generation at a time: the orchestrator's sweeper does not resume a
download that media is still working on (or still retrying), however short its own
"downloading" limit is set.

Its own stack (module scope): the simulator's file URLs go through a slow proxy of the test,
which delays every output download and counts the downloads of each file in flight; the
orchestrator sweeps every half second with a "downloading" limit of 2 s, shorter than the
download.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from picture.devstack.ports import free_port
from picture.devstack.secrets import ensure_dev_env
from picture.devstack.stack import Ports, Stack
from picture.devstack.tokens import mint_token
from tests.integration.conftest import running_stack, wait_terminal

DOWNLOAD_SECONDS = 6.0


@dataclass
class SlowDelivery:
    """A proxy to the simulator that holds each file download for ``delay`` seconds."""

    upstream: str = ""
    delay: float = DOWNLOAD_SECONDS
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: dict[str, int] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    downloads: dict[str, int] = field(default_factory=dict)

    def serve(self, port: int) -> ThreadingHTTPServer:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                delivery = self.path.startswith("/delivery/")
                if delivery:
                    with proxy.lock:
                        proxy.downloads[self.path] = proxy.downloads.get(self.path, 0) + 1
                        proxy.in_flight[self.path] = proxy.in_flight.get(self.path, 0) + 1
                        proxy.most_in_flight[self.path] = max(
                            proxy.most_in_flight.get(self.path, 0), proxy.in_flight[self.path]
                        )
                try:
                    if delivery:
                        time.sleep(proxy.delay)
                    upstream = httpx.get(proxy.upstream + self.path, timeout=30)
                    self.send_response(upstream.status_code)
                    for name in ("content-type", "content-length"):
                        if name in upstream.headers:
                            self.send_header(name, upstream.headers[name])
                    self.end_headers()
                    self.wfile.write(upstream.content)
                finally:
                    if delivery:
                        with proxy.lock:
                            proxy.in_flight[self.path] -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture(scope="module")
def slow_delivery() -> Iterator[tuple[SlowDelivery, int]]:
    proxy = SlowDelivery()
    port = free_port()
    server = proxy.serve(port)
    try:
        yield proxy, port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def budget_stack(
    tmp_path_factory: pytest.TempPathFactory, slow_delivery: tuple[SlowDelivery, int]
) -> Iterator[Stack]:
    proxy, proxy_port = slow_delivery
    var_dir = tmp_path_factory.mktemp("download-budget")
    ports = Ports.free()
    proxy.upstream = f"http://127.0.0.1:{ports.simulator}"
    system = Stack(
        var_dir,
        ports,
        ensure_dev_env(var_dir / "dev.env"),
        pg_fsync=False,
        extra_env={
            "replicate-simulator": {
                "PICTURE_SIMULATOR_LATENCY_MS": "100",
                "PICTURE_SIMULATOR_START_DELAY_MS": "20",
                "PICTURE_SIMULATOR_PUBLIC_URL": f"http://127.0.0.1:{proxy_port}",
            },
            "orchestrator": {
                "PICTURE_SWEEP_INTERVAL_SECONDS": "0.5",
                "PICTURE_STUCK_DOWNLOADING_SECONDS": "2",
            },
        },
    )
    with running_stack(system):
        yield system


async def test_a_slow_download_is_not_run_twice(
    budget_stack: Stack, slow_delivery: tuple[SlowDelivery, int]
) -> None:
    proxy, _ = slow_delivery
    token = mint_token(budget_stack.secrets["PICTURE_JWT_SECRET"], uuid.uuid4())
    async with httpx.AsyncClient(
        base_url=budget_stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        response = await api.post("/v1/generations", json={"model": "flux-schnell", "prompt": "a slow cat"})
        assert response.status_code == 202, response.text
        view = await wait_terminal(api, response.json()["id"], timeout=120)
    assert view["status"] == "completed", view
    assert len(proxy.downloads) == 1, proxy.downloads  # one output file
    assert list(proxy.most_in_flight.values()) == [1], proxy.most_in_flight
    assert list(proxy.downloads.values()) == [1], proxy.downloads
