"""Run the simulator with uvicorn in a background thread (for tests and other tools)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from picture.replicate_simulator.app import create_app
from picture.replicate_simulator.settings import SimulatorSettings


@contextmanager
def serve_in_thread(app: FastAPI, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` on an already bound socket in a daemon thread until the block exits."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def bind_free_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on a free port of ``host``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


@contextmanager
def running_simulator(settings: SimulatorSettings | None = None) -> Iterator[SimulatorSettings]:
    """Start a simulator on a free port; yields the settings (``base_url`` is the address)."""
    base = settings if settings is not None else SimulatorSettings()
    sock = bind_free_port(base.host)
    port = sock.getsockname()[1]
    resolved = base.model_copy(update={"port": port})
    with serve_in_thread(create_app(resolved), sock):
        yield resolved
