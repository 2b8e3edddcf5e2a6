"""Where the CPU went during a benchmark run: the web UI, the model server and the load generator.

On a 2-core machine the three share the cores, so a throughput figure alone cannot say which one
was the limit. CpuShare reads the CPU time of the stack's processes (by service, from their
command lines) and of the load generator (a finished child of this process, from getrusage)
before and after the run.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterable

import psutil

# A process belongs to the first service whose marker its command line contains. The stand-in
# is two processes: the model server and its gRPC front end.
SERVICE_MARKERS = (
    ("model_server", "tfserving-standin"),
    ("model_server", "tfserving_standin.grpc_api.frontend"),
    ("web_ui", "gunicorn"),
)


def service_of(cmdline: Iterable[str]) -> str | None:
    text = " ".join(cmdline)
    return next((service for service, marker in SERVICE_MARKERS if marker in text), None)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuShare:
    """CPU seconds by service over a run: start(), run the load, stop(); then `seconds`."""

    def __init__(self, pids: Callable[[], Iterable[int]]):
        self._pids = pids  # the stack's processes now (they may fork workers between calls)
        self._before: dict[int, float] = {}
        self._children_before = 0.0
        self.seconds: dict[str, float] = {}

    def _sample(self) -> dict[int, tuple[str, float]]:
        found = {}
        for pid in self._pids():
            try:
                process = psutil.Process(pid)
                service = service_of(process.cmdline())
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if service is not None:
                found[pid] = (service, times.user + times.system)
        return found

    def start(self) -> None:
        self._before = {pid: cpu for pid, (_, cpu) in self._sample().items()}
        self._children_before = _children_cpu_seconds()

    def stop(self) -> dict[str, float]:
        totals = {service: 0.0 for service, _ in SERVICE_MARKERS}
        for pid, (service, cpu) in self._sample().items():
            totals[service] += cpu - self._before.get(pid, 0.0)  # a process started since: all of it
        totals["load_generator"] = _children_cpu_seconds() - self._children_before
        self.seconds = {service: round(value, 2) for service, value in totals.items()}
        return self.seconds


def web_ui_worker_rss_mib(pids: Iterable[int]) -> list[float]:
    """Resident memory of each gunicorn worker of the web UI (not of its master), in MiB."""
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            parent = process.parent()
            if service_of(process.cmdline()) == "web_ui" and parent and service_of(parent.cmdline()) == "web_ui":
                found.append(round(process.memory_info().rss / 2**20, 1))
        except psutil.Error:  # a process that ended between listing and reading is not a worker now
            continue
    return sorted(found)
