"""While a stage waits: stuck pods and Warning events reported by name as soon as seen, hopeless
states failing fast; re-created TFJobs waiting for the old run's pods; the timeout flags."""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from mnist_deploy import apply, cli, deploy, stuck
from mnist_deploy.errors import StageFailed
from mnist_deploy.lock import format_time
from mnist_deploy.waiting import Poller
from tests.deploy.fake_cluster import FakeClock, FakeCluster
from tests.deploy.renders import find

WEB_UI_PODS = "app.kubernetes.io/name=web-ui"
TRAIN_PODS = "batch.kubernetes.io/job-name=mnist-train"


def make_poller(clock, lines, **settings):
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall, **settings)


def waiting_pod(name, reason, message="", phase="Pending"):
    return {
        "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "main"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": reason, "message": message}}}],
        },
    }


def warning(kind, name, reason, message, when):
    return {
        "type": "Warning",
        "reason": reason,
        "message": message,
        "lastTimestamp": format_time(when),
        "involvedObject": {"kind": kind, "name": name, "namespace": "mnist"},
    }


NOT_AVAILABLE = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}


# ------------------------------------------------------------------ pure decisions ----------


def test_a_stuck_reason_is_reported_once_and_is_hopeless_only_when_it_lasts():
    watch = stuck.Watch(give_up_after=60, slow_start=300)
    pull = stuck.pod_sightings(waiting_pod("web-ui-1", "ErrImagePull", "not found"))
    lines, hopeless = watch.observe(pull, now=0)
    assert lines == ["pod web-ui-1: ErrImagePull: not found"] and hopeless is None
    backoff = stuck.pod_sightings(waiting_pod("web-ui-1", "ImagePullBackOff", "Back-off pulling image"))
    lines, hopeless = watch.observe(backoff, now=30)
    assert lines == ["pod web-ui-1: ImagePullBackOff: Back-off pulling image"] and hopeless is None
    assert watch.observe(backoff, now=40) == ([], None)  # said once
    _, hopeless = watch.observe(backoff, now=60)  # ErrImagePull and BackOff are one cause, since 0
    assert hopeless == backoff[0]
    watch.observe([], now=65)  # it went away: the clock starts again
    assert watch.observe(backoff, now=70)[1] is None


def test_an_invalid_image_name_is_hopeless_at_once():
    watch = stuck.Watch(give_up_after=600, slow_start=300)
    sightings = stuck.pod_sightings(waiting_pod("p", "InvalidImageName", "couldn't parse image"))
    assert watch.observe(sightings, now=0)[1] == sightings[0]


def test_container_creating_is_reported_only_once_it_has_lasted():
    watch = stuck.Watch(give_up_after=60, slow_start=120)
    creating = stuck.pod_sightings(waiting_pod("train-0", "ContainerCreating"))
    assert watch.observe(creating, now=0) == ([], None)
    assert watch.observe(creating, now=100) == ([], None)
    lines, hopeless = watch.observe(creating, now=130)
    assert len(lines) == 1 and lines[0].startswith("pod train-0: still ContainerCreating after 130 s")
    assert hopeless is None  # slow is not hopeless: the timeout decides
    assert watch.observe(creating, now=200) == ([], None)


def test_unschedulable_pods_are_seen():
    pod = {
        "metadata": {"name": "tf-serving-x"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes: Insufficient cpu",
                }
            ],
        },
    }
    assert stuck.pod_sightings(pod) == [
        stuck.Sighting("pod tf-serving-x", "Unschedulable", "0/3 nodes: Insufficient cpu")
    ]


def test_warning_events_of_the_workload_its_pods_and_replicasets_count():
    start = FakeClock().wall()
    events = [
        warning("Pod", "web-ui-5d8-abc", "FailedMount", 'MountVolume.SetUp failed for volume "model"', start),
        warning("ReplicaSet", "web-ui-5d8", "FailedCreate", "exceeded quota", start),
        warning("Pod", "tf-serving-1", "FailedMount", "another workload", start),
        warning("Pod", "web-ui-old", "BackOff", "from an earlier deploy", start - stuck.CLOCK_SLACK * 3),
        {**warning("Pod", "web-ui-5d8-abc", "Scheduled", "fine", start), "type": "Normal"},
    ]
    found = stuck.event_sightings(events, "web-ui", since=start)
    assert found == [
        stuck.Sighting("pod web-ui-5d8-abc", "FailedMount", 'MountVolume.SetUp failed for volume "model"'),
        stuck.Sighting("ReplicaSet/web-ui-5d8", "FailedCreate", "exceeded quota"),
    ]


# ------------------------------------------------------------------ while deploying ----------


def test_a_create_container_config_error_fails_fast_naming_the_pod(renders, clock, lines):
    cluster = FakeCluster(
        scripts={"Deployment/web-ui": [NOT_AVAILABLE]},
        pods={
            WEB_UI_PODS: [
                waiting_pod("web-ui-7f9-x2", "CreateContainerConfigError", 'configmap "web-ui-settings" not found')
            ]
        },
    )
    with pytest.raises(StageFailed) as failure:
        deploy.deploy(cluster, renders["overlays/local"], make_poller(clock, lines, give_up_after=120))
    message = str(failure.value)
    assert message.startswith(
        "Deployment/web-ui is stuck: pod web-ui-7f9-x2: CreateContainerConfigError: "
        'configmap "web-ui-settings" not found'
    )
    assert "Pending" not in message.splitlines()[0]
    assert clock.now < 900 / 2  # the serving timeout is 900 s: not waited out
    # Reported the first time it was seen, with the pod's name.
    reported = [line for line in lines if "web-ui-7f9-x2" in line]
    assert reported and "CreateContainerConfigError" in reported[0]


def test_failed_mount_and_scheduling_events_are_reported_while_the_job_runs(renders, clock, lines):
    start = clock.wall()
    mount = warning(
        "Pod",
        "mnist-train-q7x",
        "FailedMount",
        'MountVolume.SetUp failed for volume "data": driver gcsfuse.csi.storage.gke.io not found',
        start,
    )
    scheduling = warning(
        "Pod", "mnist-train-q7x", "FailedScheduling", "0/2 nodes are available: 2 Insufficient memory", start
    )
    cluster = FakeCluster(
        scripts={"Job/mnist-train": [{"active": 1}] * 5 + [{"conditions": [{"type": "Complete", "status": "True"}]}]},
        event_scripts={"mnist": [[scheduling], [scheduling, mount]]},
    )
    deploy.deploy(cluster, renders["overlays/local"], make_poller(clock, lines))
    assert (
        "  Job/mnist-train: pod mnist-train-q7x: FailedScheduling: 0/2 nodes are available: 2 Insufficient memory"
        in lines
    )
    mounts = [line for line in lines if "FailedMount" in line]
    assert len(mounts) == 1 and "pod mnist-train-q7x" in mounts[0] and "gcsfuse" in mounts[0]
    assert lines.index(mounts[0]) < next(i for i, line in enumerate(lines) if "Job/mnist-train: completed" in line)


def test_a_recreated_tfjob_waits_for_the_old_runs_pods(renders, clock, lines):
    tfjob = find(renders["overlays/gke"], "TFJob", "mnist-train")
    old = apply.with_spec_hash(tfjob)
    old["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    selector = "training.kubeflow.org/job-name=mnist-train"
    worker, chief = waiting_pod("mnist-train-worker-0", "x"), waiting_pod("mnist-train-chief-0", "x")
    cluster = FakeCluster(existing=[old], pod_scripts={selector: [[chief, worker], [worker], [worker], []]})
    apply.apply_stage(cluster, [tfjob], make_poller(clock, lines))
    events = cluster.events
    recreated = events.index(("apply", "TFJob/mnist-train"))
    pod_checks = [i for i, event in enumerate(events) if event == ("list_pods", selector)]
    assert len([i for i in pod_checks if i < recreated]) == 4  # until the list came back empty
    assert events.index(("delete", "TFJob/mnist-train")) < pod_checks[0]
    assert any(
        "waiting for the previous run's 2 pods to go (mnist-train-chief-0, mnist-train-worker-0)" in line
        for line in lines
    )


def test_old_pods_that_never_go_stop_the_deploy_with_their_names(renders, clock, lines):
    tfjob = find(renders["overlays/gke"], "TFJob", "mnist-train")
    old = apply.with_spec_hash(copy.deepcopy(tfjob))
    old["metadata"]["annotations"][apply.SPEC_HASH_ANNOTATION] = "an-older-spec"
    cluster = FakeCluster(
        existing=[old],
        pods={
            "training.kubeflow.org/job-name=mnist-train": [waiting_pod("mnist-train-worker-0", "x", phase="Running")]
        },
    )
    with pytest.raises(StageFailed, match=r"previous run's pods are still there after 120 s \(mnist-train-worker-0\)"):
        apply.apply_stage(cluster, [tfjob], make_poller(clock, lines), delete_timeout=120)
    assert "TFJob/mnist-train" not in cluster.applied()
    assert 120 <= clock.now < 130


# ---------------------------------------------------------------------------- flags ----------


def test_timeouts_and_waiting_settings_are_flags(renders, tmp_path, monkeypatch):
    manifests = tmp_path / "local.yaml"
    manifests.write_text(yaml.safe_dump_all(renders["overlays/local"]))
    calls = []
    monkeypatch.setattr(cli, "connect", lambda context: FakeCluster())
    monkeypatch.setattr(cli.deploying, "deploy", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert (
        cli.main(
            [
                "deploy",
                "--manifests",
                os.fspath(manifests),
                "--timeout",
                "training=10800",
                "--timeout",
                "serving=600",
                "--delete-timeout",
                "90",
                "--give-up-after",
                "45",
                "--slow-start",
                "240",
                "--lease-seconds",
                "30",
            ]
        )
        == 0
    )
    (((_, objects, poller, timeouts, delete_timeout), kwargs),) = calls
    assert timeouts == {"training": 10800.0, "serving": 600.0} and delete_timeout == 90
    assert (poller.give_up_after, poller.slow_start, kwargs["lease_seconds"]) == (45, 240, 30)
    calls.clear()
    assert cli.main(["deploy", "--manifests", os.fspath(manifests)]) == 0  # defaults as before
    (((_, _, poller, timeouts, delete_timeout), _),) = calls
    assert timeouts == {} and delete_timeout == deploy.DELETE_TIMEOUT


@pytest.mark.parametrize(
    "flag, said",
    [
        (["--timeout", "trianing=60"], "--timeout trianing=60: no stage 'trianing'"),
        (["--timeout", "training=soon"], "--timeout training=soon: expected a number of seconds"),
        (["--timeout", "training"], "--timeout 'training': expected NAME=VALUE"),
    ],
)
def test_a_bad_timeout_flag_is_named(renders, tmp_path, monkeypatch, capsys, flag, said):
    manifests = tmp_path / "local.yaml"
    manifests.write_text(yaml.safe_dump_all(renders["overlays/local"]))
    monkeypatch.setattr(cli, "connect", lambda context: pytest.fail("must not connect with a bad flag"))
    assert cli.main(["deploy", "--manifests", os.fspath(manifests), *flag]) == 2
    assert said in capsys.readouterr().err
