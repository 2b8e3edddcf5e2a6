"""The test suite's own port helper: ports outside the ephemeral range, never handed out twice."""

from __future__ import annotations

import socket

import pytest

from tests.support import ports


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable():
    low = int(open(ports._EPHEMERAL_RANGE_FILE, encoding="ascii").read().split()[0])
    chosen = ports.free_ports(30)
    assert len(set(chosen)) == 30
    assert all(1024 <= port < low for port in chosen)
    with socket.socket() as server:
        server.bind(("127.0.0.1", chosen[0]))


def test_a_port_in_use_is_never_chosen(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy_port = busy.getsockname()[1]
        monkeypatch.setattr(ports, "_ports_below_ephemeral", lambda: range(busy_port, busy_port + 1))
        monkeypatch.setattr(ports, "_handed_out", set())
        with pytest.raises(RuntimeError, match="no free port"):
            ports.free_port()
