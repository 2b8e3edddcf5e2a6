"""Before anything starts: is every port free? A clear message naming the variable if not.

The check binds each port the way the servers will (all interfaces, SO_REUSEADDR so sockets
left in TIME_WAIT by a previous run do not count as "in use"; Linux still refuses the bind when
something is listening there) and releases it at once.
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass

# The ports of make run's stack: a busy one is most often a `make run` or `make serve` still up.
STACK_PORTS = ("GRPC_PORT", "REST_PORT", "UI_PORT")


@dataclass(frozen=True)
class PortProblem:
    variable: str
    port: int
    message: str


def port_is_free(port: int, host: str = "0.0.0.0") -> tuple[bool, str]:
    """(True, "") if `port` can be bound on `host`, else (False, why)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False, "in use"
            if error.errno == errno.EACCES:
                return False, "needs privileges to bind"
            return False, error.strerror or str(error)
    return True, ""


def check_ports(ports: dict[str, int], host: str = "0.0.0.0", command: str = "make run") -> list[PortProblem]:
    """Every problem with the wanted ports, in the order given (empty: all free).

    `command` is what the message suggests re-running with another port.
    """
    problems = []
    owners: dict[int, str] = {}
    for variable, port in ports.items():
        if not 0 < port < 65536:
            problems.append(PortProblem(variable, port, f"{variable}={port} is not a TCP port (1-65535)"))
            continue
        if port in owners:
            problems.append(
                PortProblem(
                    variable, port, f"{variable} and {owners[port]} are both {port}: give each service its own port"
                )
            )
            continue
        owners[port] = variable
        free, why = port_is_free(port, host)
        if not free:
            if why == "in use" and variable in STACK_PORTS:  # most often our own, started earlier
                why = "in use (by a `make run` or `make serve` already up?)"
            problems.append(
                PortProblem(
                    variable,
                    port,
                    f"port {port} ({variable}) is {why}: stop what holds it, or run "
                    f"`{command} {variable}={suggest_port(port, set(ports.values()))}`",
                )
            )
    return problems


def suggest_port(busy: int, taken: set[int]) -> int:
    """A nearby port number to suggest (not checked: only a hint for the message)."""
    candidate = busy + 1
    while candidate in taken:
        candidate += 1
    return candidate if candidate < 65536 else 1024


# Ports for servers started by the tests and the benchmarks are drawn from below the kernel's
# ephemeral range. A port the OS hands out for bind(0) is an ephemeral one, and between that probe
# and the server's own bind any outgoing connection (a client polling another server) may take it
# as its local port: the server then fails with "Address already in use" (gunicorn did once, in a
# fresh-clone CI run). No connection is ever given a local port outside the ephemeral range.
_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_handed_out: set[int] = set()  # chosen earlier in this process, perhaps not bound yet


def _ports_below_ephemeral() -> range:
    try:
        with open(_EPHEMERAL_RANGE_FILE, encoding="ascii") as handle:
            low = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default start of the range
    return range(max(1024, low - 12000), low)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to right now, outside the ephemeral range, not handed out before
    in this process (for tests and the benchmarks)."""
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


def is_listening(port: int, host: str = "127.0.0.1", timeout_seconds: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False
