"""One deploy per namespace at a time: a coordination.k8s.io/v1 Lease named `mnist-deploy` in
the namespace, held while a deploy or undeploy runs.

  taken     when there is none, it is released (no holder), or its holder stopped renewing it
            (renewTime + leaseDurationSeconds is past): the API server's resourceVersion check
            (create, or replace of the version read) lets only one of two racing deploys win
  renewed   while the deploy waits (every third of the lease duration), so a deploy that runs
            for hours keeps it, and one that died loses it after one lease duration
  released  at the end, also on error: holder cleared, as client-go's leader election does

The decisions (free? who holds it?) are pure; `DeployLock` makes the calls through a Cluster.
"""

from __future__ import annotations

import copy
import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mnist_deploy.cluster import Cluster
from mnist_deploy.errors import Conflict, DeployError

LEASE_NAME = "mnist-deploy"
LEASE_SECONDS = 60
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the API's MicroTime


def holder_identity() -> str:
    """user@host pid N: enough for whoever is refused to find the other deploy."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    for pattern in (TIME_FORMAT, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Holder:
    identity: str
    acquired: datetime | None
    expires: datetime | None


def current_holder(lease: dict | None, now: datetime) -> Holder | None:
    """Who holds the lease now; None if nobody does (absent, released, or expired)."""
    spec = (lease or {}).get("spec") or {}
    identity = spec.get("holderIdentity")
    if not identity:
        return None
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    expires = renewed + timedelta(seconds=spec.get("leaseDurationSeconds") or LEASE_SECONDS) if renewed else None
    if expires is not None and expires <= now:
        return None
    return Holder(identity, parse_time(spec.get("acquireTime")), expires)


def refusal(namespace: str, holder: Holder, now: datetime) -> str:
    since = f" since {format_time(holder.acquired)[:19]}Z" if holder.acquired else ""
    expiry = f"; it expires in {int((holder.expires - now).total_seconds())} s unless renewed" if holder.expires else ""
    return (
        f"another deploy holds namespace {namespace}: {holder.identity}{since}{expiry}. Wait for it to "
        f"finish, or if it is dead, let the lease expire (kubectl -n {namespace} get lease {LEASE_NAME})"
    )


def lease_body(namespace: str, identity: str, now: datetime, duration: int, previous: dict | None) -> dict:
    """The Lease as we hold it; keeps the previous version's resourceVersion so replacing it
    fails if someone else changed it since we read it."""
    spec = (previous or {}).get("spec") or {}
    same_holder = spec.get("holderIdentity") == identity
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": namespace},
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": duration,
            "acquireTime": spec.get("acquireTime") if same_holder else format_time(now),
            "renewTime": format_time(now),
            "leaseTransitions": (spec.get("leaseTransitions") or 0) + (0 if same_holder or previous is None else 1),
        },
    }
    if previous is not None:
        body["metadata"]["resourceVersion"] = previous["metadata"].get("resourceVersion")
    return body


def released(lease: dict) -> dict:
    body = copy.deepcopy(lease)
    body["spec"].update({"holderIdentity": None, "leaseDurationSeconds": 1})
    return body


class DeployLock:
    """Take, renew (renew_if_due is called while waiting) and release the namespace's Lease."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        wall: Callable[[], datetime],
        identity: str | None = None,
        duration: int = LEASE_SECONDS,
    ):
        self.cluster, self.namespace, self.wall = cluster, namespace, wall
        self.identity, self.duration = identity or holder_identity(), duration
        self._held: dict | None = None

    def _ref(self) -> dict:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
        }

    def acquire(self) -> None:
        now = self.wall()
        existing = self.cluster.get(self._ref())
        holder = current_holder(existing, now)
        if holder is not None and holder.identity != self.identity:
            raise DeployError(refusal(self.namespace, holder, now))
        body = lease_body(self.namespace, self.identity, now, self.duration, existing)
        try:
            self._held = self.cluster.create(body) if existing is None else self.cluster.replace(body)
        except Conflict:  # someone took it between our read and our write
            winner = current_holder(self.cluster.get(self._ref()), self.wall())
            raise DeployError(
                refusal(self.namespace, winner, self.wall())
                if winner
                else f"namespace {self.namespace}: the deploy lock changed while taking it; try again"
            ) from None

    def renew_if_due(self) -> None:
        if self._held is None:
            return
        renewed = parse_time(self._held["spec"].get("renewTime"))
        now = self.wall()
        if renewed is not None and now - renewed < timedelta(seconds=self.duration / 3):
            return
        try:
            self._held = self.cluster.replace(lease_body(self.namespace, self.identity, now, self.duration, self._held))
        except Conflict:
            self._held = None
            raise DeployError(
                f"lost the deploy lock of namespace {self.namespace} (another deploy took over "
                "an expired lease: was this one paused?); stopping"
            ) from None

    def release(self) -> None:
        if self._held is None:
            return
        held, self._held = self._held, None
        try:
            self.cluster.replace(released(held))
        except Conflict:
            pass  # taken over since: not ours to release any more
