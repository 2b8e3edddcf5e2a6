"""Polling: until a stage's workloads are done, or until something is gone. The clock and the
sleep are parameters so tests run instantly."""

from __future__ import annotations

import time
from typing import Callable

from mnist_deploy.cluster import Cluster
from mnist_deploy.diagnose import failure_report
from mnist_deploy.errors import StageFailed
from mnist_deploy.order import describe
from mnist_deploy.readiness import FAILED, WAITING, needs_waiting, readiness


class Poller:
    def __init__(self, interval: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, report: Callable[[str], None] = print):
        self.interval, self.clock, self.sleep, self.report = interval, clock, sleep, report

    def until_gone(self, cluster: Cluster, obj: dict, timeout: float) -> None:
        deadline = self.clock() + timeout
        while cluster.get(obj) is not None:
            if self.clock() >= deadline:
                raise StageFailed(f"{describe(obj)} was deleted but is still there after {timeout:.0f} s")
            self.sleep(self.interval)

    def until_ready(self, cluster: Cluster, objects: list[dict], timeout: float) -> None:
        """Return when every Job/TFJob/Deployment among objects is done; raise StageFailed with
        the failing pod's story when one fails or the time is up."""
        pending = [obj for obj in objects if needs_waiting(obj)]
        last_seen: dict[str, str] = {}
        deadline = self.clock() + timeout
        while True:
            still_pending = []
            for obj in pending:
                state = readiness(cluster.get(obj))
                if state.state == FAILED:
                    raise StageFailed(f"{describe(obj)} {state.detail}\n{failure_report(cluster, obj)}")
                if last_seen.get(describe(obj)) != state.detail:
                    self.report(f"  {describe(obj)}: {state.detail}")
                    last_seen[describe(obj)] = state.detail
                if state.state == WAITING:
                    still_pending.append(obj)
            pending = still_pending
            if not pending:
                return
            if self.clock() >= deadline:
                obj = pending[0]
                raise StageFailed(
                    f"{describe(obj)} not ready after {timeout:.0f} s ({last_seen[describe(obj)]})\n"
                    f"{failure_report(cluster, obj)}"
                )
            self.sleep(self.interval)
