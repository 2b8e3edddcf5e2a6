"""Loopback ports for servers a test starts.

Ports are drawn from below the kernel's ephemeral range. A port the OS hands out for bind(0) is an
ephemeral one, and between that probe and the server's own bind any outgoing connection (a
client polling another test server) may take it as its local port: gunicorn then fails with
"Address already in use" (it did once, in a fresh-clone CI run, for the resilience stack). No
connection is ever given a local port outside the ephemeral range.
"""

from __future__ import annotations

import random
import socket

_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_handed_out: set[int] = set()  # chosen earlier in this run, perhaps not bound yet


def _ports_below_ephemeral() -> range:
    try:
        with open(_EPHEMERAL_RANGE_FILE, encoding="ascii") as handle:
            low = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default start of the range
    return range(max(1024, low - 12000), low)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to right now, outside the ephemeral range, not handed out before."""
    candidates = _ports_below_ephemeral()
    draw = random.Random()
    for _ in range(500):
        port = draw.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {candidates.start}-{candidates.stop - 1} on {host}")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports."""
    return [free_port(host) for _ in range(count)]
