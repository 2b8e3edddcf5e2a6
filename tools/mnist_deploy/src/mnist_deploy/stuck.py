"""What a workload's pods are stuck on while a stage waits, reported as soon as seen instead of
a bare "Pending" at the timeout, and when it is hopeless (it will not get better on its own).

Seen from two sources, both pure inputs here:
  pods     a container waiting on ImagePullBackOff, CreateContainerConfigError, CrashLoopBackOff...;
           a pod the scheduler cannot place; a pod still ContainerCreating after `slow_start` s
  events   Warning events (FailedMount, FailedScheduling, FailedCreate, BackOff...) about the
           workload or its pods and ReplicaSets (their names start with "<workload>-")

`Watch` remembers since when each (pod, reason) is seen: a reason in GIVES_UP seen without a
break for `give_up_after` s (InvalidImageName at once) fails the stage with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mnist_deploy.lock import parse_time

# Container waiting reasons that only someone changing something fixes.
GIVES_UP = {
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
    "RunContainerError",
}
AT_ONCE = {"InvalidImageName"}
# Reasons that alternate for one cause: persistence is counted across them.
SAME_CAUSE = {"ErrImagePull": "ImagePullBackOff"}
STARTING = {"ContainerCreating", "PodInitializing"}
# Events stamped this long before the wait began still count (the API server's clock is not ours).
CLOCK_SLACK = timedelta(seconds=30)


@dataclass(frozen=True)
class Sighting:
    subject: str  # "pod NAME" or "Kind/NAME"
    reason: str
    message: str = ""

    def line(self) -> str:
        return f"{self.subject}: {self.reason}" + (f": {self.message}" if self.message else "")


def pod_sightings(pod: dict) -> list[Sighting]:
    subject = f"pod {pod['metadata']['name']}"
    status = pod.get("status") or {}
    found = []
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            found.append(Sighting(subject, waiting["reason"], waiting.get("message") or ""))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            found.append(Sighting(subject, condition.get("reason") or "Unschedulable", condition.get("message") or ""))
    if status.get("phase") == "Pending" and not found and (status.get("conditions") or []):
        # Scheduled, no container status yet: the kubelet is still setting the pod up.
        found.append(Sighting(subject, "ContainerCreating"))
    return found


def event_sightings(events: list[dict], workload: str, since: datetime) -> list[Sighting]:
    """Warning events about the workload, its pods or ReplicaSets, not older than since."""
    found = []
    for event in events:
        involved = event.get("involvedObject") or {}
        name = involved.get("name") or ""
        if event.get("type") != "Warning" or not (name == workload or name.startswith(f"{workload}-")):
            continue
        stamp = parse_time(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp"))
        if stamp is not None and stamp < since - CLOCK_SLACK:
            continue
        subject = f"pod {name}" if involved.get("kind") == "Pod" else f"{involved.get('kind')}/{name}"
        found.append(Sighting(subject, event.get("reason") or "Warning", event.get("message") or ""))
    return found


class Watch:
    """Turns the sightings of successive polls into lines to print (each once) and a verdict."""

    def __init__(self, give_up_after: float, slow_start: float):
        self.give_up_after, self.slow_start = give_up_after, slow_start
        self.first_seen: dict[tuple[str, str], float] = {}
        self.reported: set[tuple[str, str, str]] = set()

    def observe(self, sightings: list[Sighting], now: float) -> tuple[list[str], Sighting | None]:
        """(new lines to report, the hopeless sighting if there is one)."""
        current = {(s.subject, SAME_CAUSE.get(s.reason, s.reason)): s for s in sightings}
        self.first_seen = {key: self.first_seen.get(key, now) for key in current}  # a break resets
        lines, hopeless = [], None
        for key, sighting in current.items():
            lasted = now - self.first_seen[key]
            if sighting.reason in STARTING:
                if lasted < self.slow_start or (*key, "slow") in self.reported:
                    continue
                self.reported.add((*key, "slow"))
                lines.append(
                    f"{sighting.subject}: still {sighting.reason} after {lasted:.0f} s "
                    "(a volume that does not mount, or a slow image pull: see its events)"
                )
                continue
            seen = (*key, sighting.message)
            if seen not in self.reported:
                self.reported.add(seen)
                lines.append(sighting.line())
            if sighting.reason in AT_ONCE or (sighting.reason in GIVES_UP and lasted >= self.give_up_after):
                hopeless = hopeless or sighting
        return lines, hopeless

    def lasted(self, sighting: Sighting, now: float) -> float:
        return now - self.first_seen.get((sighting.subject, SAME_CAUSE.get(sighting.reason, sighting.reason)), now)
