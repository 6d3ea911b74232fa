"""NATS and PostgreSQL on free ports in a folder, for the length of a ``with`` block: what the
packages' test fixtures start (one of each per session), without a whole :mod:`stack`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from picture.devstack.infra import NatsServer, PostgresServer
from picture.devstack.ports import free_port

__all__ = ["running_nats", "running_postgres"]


@contextmanager
def running_nats(folder: Path) -> Iterator[NatsServer]:
    """NATS with JetStream storing in ``folder``, stopped on exit."""
    server = NatsServer(folder / "store", free_port(), free_port(), folder / "nats.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_postgres(folder: Path, *, fsync: bool = False) -> Iterator[PostgresServer]:
    """PostgreSQL with its data in ``folder``, stopped on exit; without fsync unless asked (a
    test's data need not survive a power cut, and it is much faster on a loaded machine)."""
    server = PostgresServer(folder / "data", free_port(), folder / "pg.log", fsync=fsync)
    server.start()
    try:
        yield server
    finally:
        server.stop()
