"""The deploy lock: a Lease in the namespace, taken, renewed while waiting, released at the end."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest

from mnist_deploy import deploy, lock
from mnist_deploy.errors import Conflict, DeployError, StageFailed
from mnist_deploy.waiting import Poller
from tests.deploy.fake_cluster import FakeClock, FakeCluster

LEASE = "Lease/mnist-deploy"
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mnist"}}


@pytest.fixture
def poller(clock):
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lambda line: None, wall=clock.wall)


def lease_held_by(identity, renewed, acquired, duration=60):
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "mnist-deploy", "namespace": "mnist", "resourceVersion": "1"},
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": duration,
            "acquireTime": lock.format_time(acquired),
            "renewTime": lock.format_time(renewed),
        },
    }


def test_the_holder_names_user_host_and_pid():
    identity = lock.holder_identity()
    assert f"@{socket.gethostname()} pid {os.getpid()}" in identity


def test_a_second_deploy_to_the_namespace_is_refused_saying_who_holds_it(renders, poller, clock):
    acquired = clock.wall() - timedelta(minutes=42)
    held = lease_held_by("alice@build-7 pid 4242", renewed=clock.wall() - timedelta(seconds=10), acquired=acquired)
    cluster = FakeCluster(existing=[NAMESPACE, held])
    with pytest.raises(DeployError) as refused:
        deploy.deploy(cluster, renders["overlays/local"], poller, lock_identity="bob@laptop pid 1")
    message = str(refused.value)
    assert refused.value.exit_code == 2
    assert "alice@build-7 pid 4242" in message
    assert f"since {lock.format_time(acquired)[:19]}Z" in message
    assert cluster.applied() == [] and not [e for e in cluster.events if e[0] == "dry-run"]
    assert cluster.objects[LEASE]["spec"]["holderIdentity"] == "alice@build-7 pid 4242"  # untouched


def test_an_expired_lease_is_taken_over(renders, poller, clock):
    stale = lease_held_by(
        "alice@build-7 pid 4242",
        renewed=clock.wall() - timedelta(minutes=10),
        acquired=clock.wall() - timedelta(hours=2),
    )
    cluster = FakeCluster(existing=[NAMESPACE, stale])
    holders = []

    original_apply = cluster.apply

    def apply(obj, dry_run=False):
        if obj["kind"] == "Deployment":
            holders.append(cluster.objects[LEASE]["spec"]["holderIdentity"])
        return original_apply(obj, dry_run)

    cluster.apply = apply
    deploy.deploy(cluster, renders["overlays/local"], poller, lock_identity="bob@laptop pid 1")
    assert holders and set(holders) == {"bob@laptop pid 1"}
    assert cluster.objects[LEASE]["spec"]["leaseTransitions"] == 1
    assert cluster.objects[LEASE]["spec"]["holderIdentity"] is None  # released at the end


def test_the_lease_is_renewed_while_a_long_stage_runs(renders, poller, clock):
    """Training that takes 20 lease durations: at every poll someone else would be refused."""
    cluster = FakeCluster(
        scripts={"Job/mnist-train": [{"active": 1}] * 240 + [{"conditions": [{"type": "Complete", "status": "True"}]}]}
    )
    seen_free = []
    original_get = cluster.get

    def get(obj):
        if obj["kind"] == "Job" and obj["metadata"]["name"] == "mnist-train":
            seen_free.append(lock.current_holder(cluster.objects.get(LEASE), clock.wall()) is None)
        return original_get(obj)

    cluster.get = get
    deploy.deploy(cluster, renders["overlays/local"], poller, lock_identity="bob@laptop pid 1", lease_seconds=60)
    assert clock.now >= 20 * 60 and len(seen_free) > 200
    assert not any(seen_free)
    renewals = [e for e in cluster.events if e == ("replace", LEASE)]
    assert len(renewals) >= clock.now / 60  # at least once a lease duration


def test_the_lock_is_released_when_the_deploy_fails(renders, poller):
    cluster = FakeCluster(scripts={"Job/mnist-train": [{"conditions": [{"type": "Failed", "status": "True"}]}]})
    with pytest.raises(StageFailed):
        deploy.deploy(cluster, renders["overlays/local"], poller, lock_identity="bob@laptop pid 1")
    assert lock.current_holder(cluster.objects[LEASE], poller.wall()) is None
    deploy.deploy(FakeCluster(existing=list(cluster.objects.values())), renders["overlays/local"], poller)


def test_losing_a_race_for_the_lease_names_the_winner(poller, clock):
    class Racing(FakeCluster):
        def create(self, obj):
            self.objects["Lease/mnist-deploy"] = lease_held_by("carol@ci pid 9", clock.wall(), clock.wall())
            raise Conflict("Lease/mnist-deploy already exists")

    deploy_lock = lock.DeployLock(Racing(existing=[NAMESPACE]), "mnist", clock.wall, "bob@laptop pid 1")
    with pytest.raises(DeployError, match="carol@ci pid 9"):
        deploy_lock.acquire()


def test_holder_decisions():
    now = FakeClock().wall()
    assert lock.current_holder(None, now) is None
    fresh = lease_held_by("a", renewed=now - timedelta(seconds=59), acquired=now - timedelta(hours=1))
    assert lock.current_holder(fresh, now).identity == "a"
    assert lock.current_holder(fresh, now + timedelta(seconds=2)) is None  # expired
    assert lock.current_holder(lock.released(fresh), now) is None
