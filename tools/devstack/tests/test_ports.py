from __future__ import annotations

import itertools
import socket

import pytest

from picture.devstack import ports


def test_ports_are_unique_bindable_and_below_the_ephemeral_range() -> None:
    low = ports._ephemeral_low()
    chosen = [ports.free_port() for _ in range(50)]
    assert len(set(chosen)) == len(chosen)
    assert all(ports._LOWEST <= p < low for p in chosen)
    for port in chosen[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        draws = itertools.chain([taken, taken], itertools.count(20000))
        monkeypatch.setattr(ports.random, "randint", lambda _lo, _hi: next(draws))
        monkeypatch.setattr(ports, "_handed_out", set())
        assert ports.free_port() != taken
