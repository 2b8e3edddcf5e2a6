"""`deploy`, `status` and `undeploy` against the in-memory cluster: order, waiting, re-runs, and
what a failure prints."""

from __future__ import annotations

import copy

import pytest

from mnist_deploy import apply, deploy, order
from mnist_deploy.errors import DeployError, StageFailed
from mnist_deploy.waiting import Poller
from tests.deploy.fake_cluster import FakeCluster
from tests.deploy.renders import find


@pytest.fixture
def poller(clock, lines):
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall)


def running_job(active=1):
    return {"active": active}


def failed_pod(name, container, exit_code=2, created="2026-01-01T00:00:10Z"):
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"containers": [{"name": container}]},
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": container, "state": {"terminated": {"exitCode": exit_code, "reason": "Error"}}}
            ],
        },
    }


def test_a_deploy_applies_stage_by_stage_and_waits_in_between(renders, poller, lines):
    objects = renders["overlays/local"]
    cluster = FakeCluster(
        scripts={
            "Job/mnist-train": [running_job(), running_job(), {"conditions": [{"type": "Complete", "status": "True"}]}]
        }
    )
    deploy.deploy(cluster, objects, poller)

    # Everything was applied exactly once, in the planned order (besides the inventory's parent).
    planned = [order.describe(obj) for stage in order.plan(objects) for obj in stage.objects]
    assert [key for key in cluster.applied() if key != "Secret/mnist-deploy"] == planned
    # The exporter starts only after the trainer's Job was seen complete (its third status).
    events = cluster.events
    export_applied = events.index(("apply", "Job/mnist-export"))
    train_gets = [i for i, event in enumerate(events) if event == ("get", "Job/mnist-train")]
    assert len([i for i in train_gets if i < export_applied]) >= 3
    assert max(i for i, e in enumerate(events) if e == ("apply", "Job/mnist-train")) < train_gets[-1]
    # Jobs carry the hash of their spec, for the next deploy to compare.
    assert cluster.objects["Job/mnist-train"]["metadata"]["annotations"][apply.SPEC_HASH_ANNOTATION]
    assert "The web UI: kubectl -n mnist port-forward service/web-ui 8080:8080" in lines[-1]


def test_a_kind_the_cluster_lacks_stops_the_deploy_before_anything_is_applied(renders, poller):
    cluster = FakeCluster(missing_kinds=("TFJob",))
    with pytest.raises(DeployError, match="no TFJob"):
        deploy.deploy(cluster, renders["overlays/gke"], poller)
    assert cluster.applied() == []
    checked = [kind for action, kind in cluster.events if action == "ensure_kind"]
    assert len(checked) == len(set(checked)) and checked[-1] == "TFJob"  # each kind once, stopped there


def test_a_failed_training_stops_the_deploy_and_shows_the_pod_log(renders, poller):
    objects = renders["overlays/local"]
    cluster = FakeCluster(
        scripts={
            "Job/mnist-train": [
                running_job(),
                {
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "PodFailurePolicy",
                            "message": "Container tensorflow for pod mnist/mnist-train-x1 failed with exit code 2",
                        }
                    ]
                },
            ]
        },
        pods={
            "batch.kubernetes.io/job-name=mnist-train": [
                failed_pod("mnist-train-old", "tensorflow", 137, created="2026-01-01T00:00:01Z"),
                failed_pod("mnist-train-x1", "tensorflow"),
            ]
        },
        logs={"mnist-train-x1": "\n".join(f"epoch {i}" for i in range(50)) + "\nerror: --data-dir: no train split"},
    )
    with pytest.raises(StageFailed) as failure:
        deploy.deploy(cluster, objects, poller)
    message = str(failure.value)
    assert failure.value.exit_code == 1
    assert message.startswith("Job/mnist-train failed: PodFailurePolicy")
    assert "pod mnist-train-x1, container tensorflow: exited with code 2 (Error)" in message
    assert "error: --data-dir: no train split" in message and "epoch 49" in message
    assert "epoch 19" not in message  # only the last 30 lines
    assert "Job/mnist-export" not in cluster.applied()
    assert "Deployment/web-ui" not in cluster.applied()


def test_a_rollout_that_never_gets_ready_times_out_with_the_reason(renders, poller, clock):
    objects = renders["overlays/local"]
    stuck = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}
    pod = {
        "metadata": {"name": "web-ui-abc", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "web-ui"}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "web-ui",
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": 'Back-off pulling image "mnist.local/mnist-web-ui:abc"',
                        }
                    },
                }
            ],
        },
    }
    cluster = FakeCluster(scripts={"Deployment/web-ui": [stuck]}, pods={"app.kubernetes.io/name=web-ui": [pod]})
    with pytest.raises(StageFailed) as failure:
        deploy.deploy(cluster, objects, poller, timeouts={"serving": 60})
    message = str(failure.value)
    assert message.startswith("Deployment/web-ui not ready after 60 s (0 of 1 replicas available)")
    assert "ImagePullBackOff: Back-off pulling image" in message
    assert '(no log available: container "web-ui" in pod "web-ui-abc" is waiting to start' in message
    assert clock.now >= 60


def test_a_second_deploy_keeps_finished_jobs_with_the_same_spec(renders, poller):
    objects = renders["overlays/local"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    cluster.events.clear()
    deploy.deploy(cluster, objects, poller)
    assert not [event for event in cluster.events if event[0] == "delete"]
    assert not [key for key in cluster.applied() if key.startswith("Job/")]
    assert "Deployment/tf-serving" in cluster.applied()  # apply is idempotent for the rest


def test_a_changed_trainer_reruns_training_and_export_but_not_data(renders, poller):
    objects = renders["overlays/local"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    changed = copy.deepcopy(objects)
    find(changed, "Job", "mnist-train")["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "r.example/mnist-trainer:new"
    )
    cluster.events.clear()
    deploy.deploy(cluster, changed, poller)
    deleted = [key for action, key in cluster.events if action == "delete"]
    assert deleted == ["Job/mnist-train", "Job/mnist-export"]
    for key in deleted:  # deleted before being created again
        assert cluster.events.index(("delete", key)) < cluster.events.index(("apply", key))
    assert "Job/mnist-data" not in cluster.applied()


def test_a_failed_job_is_rerun_even_with_the_same_spec(renders):
    job = copy.deepcopy(find(renders["overlays/local"], "Job", "mnist-data"))
    previous = apply.with_spec_hash(job)
    previous["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    assert apply.run_once_decision(previous, job, upstream_reran=False) == apply.RERUN
    previous["status"] = {"active": 1}
    assert apply.run_once_decision(previous, job, upstream_reran=False) == apply.KEEP
    assert apply.run_once_decision(previous, job, upstream_reran=True) == apply.RERUN
    assert apply.run_once_decision(None, job, upstream_reran=False) == apply.CREATE
    unstamped = copy.deepcopy(job)  # created by someone else: re-run so the spec is ours
    assert apply.run_once_decision(unstamped, job, upstream_reran=False) == apply.RERUN


def test_a_job_that_will_not_go_away_is_an_error(renders, poller):
    job = find(renders["overlays/local"], "Job", "mnist-data")

    class Sticky(FakeCluster):
        def delete(self, obj):
            self.events.append(("delete", order.describe(obj)))

    cluster = Sticky(existing=[job])
    with pytest.raises(StageFailed, match="still there after 300 s"):
        apply.apply_stage(cluster, [job], poller)


def test_gke_deploy_says_where_the_ui_is(renders, poller, lines):
    objects = renders["overlays/gke"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    assert "TFJob/mnist-train" in cluster.applied()
    first, second = lines[-1].splitlines()
    assert first == "The web UI: https://mnist.example.com/ (sign in with Google; IAP)"
    assert "still being created" in second
    cluster.objects["Ingress/web-ui"]["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    assert "point the domain at 203.0.113.7" in deploy.how_to_open(cluster, objects)


def test_status_lists_every_object_with_its_state(renders, poller):
    objects = renders["overlays/local"]
    cluster = FakeCluster(scripts={"Job/mnist-train": [running_job(2)]})
    apply.apply_stage(cluster, [find(objects, "Job", "mnist-train")], poller)
    rows = {name: (stage, state) for name, stage, state in deploy.status(cluster, objects)}
    assert len(rows) == len(objects)
    assert rows["Job/mnist-train"] == ("training", "waiting: 2 running, 0 failed so far")
    assert rows["Deployment/web-ui"] == ("serving", "missing")


def test_undeploy_removes_workloads_first_and_keeps_storage(renders, poller):
    objects = renders["overlays/local"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    cluster.events.clear()
    deploy.undeploy(cluster, objects, poller)
    deleted = [key for action, key in cluster.events if action == "delete"]
    assert "PersistentVolumeClaim/mnist-storage" not in deleted and "Namespace/mnist" not in deleted
    assert deleted.index("Deployment/web-ui") < deleted.index("Service/web-ui")
    assert deleted.index("Job/mnist-train") < deleted.index("ServiceAccount/mnist-trainer")
    deploy.undeploy(cluster, objects, poller, delete_storage=True)
    assert cluster.events[-1] == ("delete", "Namespace/mnist")


def test_train_force_reruns_the_finished_jobs_with_the_same_spec(renders, poller):
    objects = renders["overlays/local"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    cluster.events.clear()
    deploy.deploy(cluster, objects, poller, rerun_jobs=True)
    deleted = [key for action, key in cluster.events if action == "delete"]
    assert deleted == ["Job/mnist-data", "Job/mnist-train", "Job/mnist-export"]
    for key in deleted:  # the old run is gone before the new one starts
        assert cluster.events.index(("delete", key)) < cluster.events.index(("apply", key))


def test_force_decides_rerun_only_for_something_that_ran(renders):
    job = find(renders["overlays/local"], "Job", "mnist-train")
    previous = apply.with_spec_hash(job)
    assert apply.run_once_decision(previous, job, upstream_reran=False, force=True) == apply.RERUN
    assert apply.run_once_decision(None, job, upstream_reran=False, force=True) == apply.CREATE
