"""Polling: until a stage's workloads are done, or until something is gone. The clocks and the
sleep are parameters so tests run instantly. While a stage waits, what its pods are stuck on is
reported as soon as seen (mnist_deploy.stuck), and every pause gives the deploy lock its turn to
be renewed (heartbeats)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from mnist_deploy.cluster import Cluster
from mnist_deploy.diagnose import failure_report, pod_selector
from mnist_deploy.errors import StageFailed
from mnist_deploy.order import describe
from mnist_deploy.readiness import FAILED, WAITING, needs_waiting, readiness
from mnist_deploy.stuck import Watch, event_sightings, pod_sightings

GIVE_UP_AFTER = 300.0  # seconds a hopeless reason (ImagePullBackOff...) may last before failing
SLOW_START = 300.0  # seconds in ContainerCreating before it is reported


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Poller:
    def __init__(
        self,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        report: Callable[[str], None] = print,
        wall: Callable[[], datetime] = _utc_now,
        give_up_after: float = GIVE_UP_AFTER,
        slow_start: float = SLOW_START,
    ):
        self.interval, self.clock, self.sleep, self.report = interval, clock, sleep, report
        self.wall, self.give_up_after, self.slow_start = wall, give_up_after, slow_start
        self.heartbeats: list[Callable[[], None]] = []

    def pause(self) -> None:
        for beat in self.heartbeats:
            beat()
        self.sleep(self.interval)

    def until_gone(self, cluster: Cluster, obj: dict, timeout: float) -> None:
        deadline = self.clock() + timeout
        while cluster.get(obj) is not None:
            if self.clock() >= deadline:
                raise StageFailed(f"{describe(obj)} was deleted but is still there after {timeout:.0f} s")
            self.pause()

    def until_pods_gone(self, cluster: Cluster, obj: dict, timeout: float) -> None:
        """Wait for the pods of a deleted workload to go: a TFJob's pods have fixed names
        (NAME-worker-0), so a new run with the same name collides with the old run's pods
        while they terminate (and with cleanPodPolicy None they outlive the run)."""
        selector = pod_selector(obj)
        namespace = obj["metadata"].get("namespace", "default")
        deadline = self.clock() + timeout
        announced = False
        while pods := cluster.list_pods(namespace, selector):
            names = ", ".join(sorted(pod["metadata"]["name"] for pod in pods))
            if self.clock() >= deadline:
                raise StageFailed(
                    f"{describe(obj)}: the previous run's pods are still there after {timeout:.0f} s ({names}); "
                    f"see kubectl -n {namespace} get pods -l {selector}, or delete them and deploy again"
                )
            if not announced:
                self.report(f"  {describe(obj)}: waiting for the previous run's {len(pods)} pods to go ({names})")
                announced = True
            self.pause()

    def until_ready(self, cluster: Cluster, objects: list[dict], timeout: float) -> None:
        """Return when every Job/TFJob/Deployment among objects is done; raise StageFailed with
        the failing pod's story when one fails, is hopelessly stuck, or the time is up."""
        pending = [obj for obj in objects if needs_waiting(obj)]
        last_seen: dict[str, str] = {}
        watches = {describe(obj): Watch(self.give_up_after, self.slow_start) for obj in pending}
        since = self.wall()
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
            self._watch(cluster, pending, watches, since, timeout)
            if self.clock() >= deadline:
                obj = pending[0]
                raise StageFailed(
                    f"{describe(obj)} not ready after {timeout:.0f} s ({last_seen[describe(obj)]})\n"
                    f"{failure_report(cluster, obj)}"
                )
            self.pause()

    def _watch(
        self, cluster: Cluster, pending: list[dict], watches: dict[str, Watch], since: datetime, timeout: float
    ) -> None:
        events_of: dict[str, list[dict]] = {}
        for obj in pending:
            namespace = obj["metadata"].get("namespace", "default")
            if namespace not in events_of:
                events_of[namespace] = cluster.list_events(namespace)
            selector = pod_selector(obj)
            pods = cluster.list_pods(namespace, selector) if selector else []
            sightings = [s for pod in pods for s in pod_sightings(pod)]
            sightings += event_sightings(events_of[namespace], obj["metadata"]["name"], since)
            watch = watches[describe(obj)]
            lines, hopeless = watch.observe(sightings, self.clock())
            for line in lines:
                self.report(f"  {describe(obj)}: {line}")
            if hopeless is not None:
                lasted = watch.lasted(hopeless, self.clock())
                raise StageFailed(
                    f"{describe(obj)} is stuck: {hopeless.line()} (for {lasted:.0f} s; giving up instead of "
                    f"waiting out the {timeout:.0f} s timeout)\n{failure_report(cluster, obj)}"
                )
