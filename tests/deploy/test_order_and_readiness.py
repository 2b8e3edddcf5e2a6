"""Which objects go first, and when a workload counts as done or failed."""

from __future__ import annotations

import pytest

from mnist_deploy import order, readiness
from mnist_deploy.readiness import DONE, FAILED, WAITING


def names(stage):
    return [order.describe(obj) for obj in stage.objects]


def test_gke_stages_run_data_training_export_then_serving(renders):
    stages = order.plan(renders["overlays/gke"])
    assert [stage.name for stage in stages] == ["setup", "data", "training", "export", "serving"]
    by_name = {stage.name: stage for stage in stages}
    assert names(by_name["data"]) == ["Job/mnist-data"]
    assert names(by_name["training"]) == ["TFJob/mnist-train"]
    assert names(by_name["export"]) == ["Job/mnist-export"]
    assert set(names(by_name["serving"])) == {
        "Deployment/tf-serving",
        "Deployment/web-ui",
        "Deployment/tensorboard",
        "HorizontalPodAutoscaler/tf-serving",
        "HorizontalPodAutoscaler/web-ui",
        "Ingress/web-ui",
    }


def test_setup_puts_what_is_referred_to_before_what_refers_to_it(renders):
    setup = order.plan(renders["overlays/gke"])[0]
    kinds = [obj["kind"] for obj in setup.objects]
    assert kinds[0] == "Namespace"
    first = {kind: kinds.index(kind) for kind in reversed(kinds)}
    assert first["ServiceAccount"] < first["ConfigMap"] <= first["NetworkPolicy"]
    assert first["BackendConfig"] < first["Service"]  # the Service's annotation names it
    assert all(obj["kind"] not in order.WORKLOAD_KINDS for obj in setup.objects)


def test_the_local_render_trains_with_a_job(renders):
    stages = {stage.name: stage for stage in order.plan(renders["overlays/local"])}
    assert names(stages["training"]) == ["Job/mnist-train"]
    assert "PersistentVolumeClaim/mnist-storage" in names(stages["setup"])


def test_stages_without_objects_are_left_out():
    objects = [{"kind": "Deployment", "metadata": {"name": "x"}}, {"kind": "ConfigMap", "metadata": {"name": "c"}}]
    assert [stage.name for stage in order.plan(objects)] == ["setup", "serving"]


def test_teardown_is_the_reverse(renders):
    objects = renders["overlays/gke"]
    applied = [obj for stage in order.plan(objects) for obj in stage.objects]
    assert order.teardown_order(objects) == list(reversed(applied))


def condition(kind, status="True", reason="", message=""):
    return {"type": kind, "status": status, "reason": reason, "message": message}


@pytest.mark.parametrize(
    "status, state",
    [
        ({}, WAITING),
        ({"active": 1}, WAITING),
        ({"conditions": [condition("Complete")]}, DONE),
        ({"conditions": [condition("Complete", "False")], "active": 1}, WAITING),
        ({"conditions": [condition("FailureTarget"), condition("Failed", reason="BackoffLimitExceeded")]}, FAILED),
        ({"conditions": [condition("SuccessCriteriaMet"), condition("Complete")]}, DONE),
    ],
)
def test_job_readiness(status, state):
    assert readiness.readiness({"kind": "Job", "metadata": {"name": "j"}, "status": status}).state == state


def test_a_failed_job_says_why():
    job = {
        "kind": "Job",
        "metadata": {"name": "j"},
        "status": {
            "conditions": [condition("Failed", reason="PodFailurePolicy", message="Container exporter exited with 2")]
        },
    }
    assert readiness.job_readiness(job).detail == "failed: PodFailurePolicy: Container exporter exited with 2"


@pytest.mark.parametrize(
    "conditions, state, detail",
    [
        ([], WAITING, "not yet seen by the training operator"),
        ([condition("Created")], WAITING, "Created"),
        ([condition("Created"), condition("Running")], WAITING, "Running"),
        ([condition("Created"), condition("Running", "False"), condition("Succeeded")], DONE, "succeeded"),
        ([condition("Created"), condition("Restarting")], WAITING, "Restarting"),
        (
            [condition("Running", "False"), condition("Failed", reason="TFJobFailed", message="Worker 1 exited 2")],
            FAILED,
            "failed: TFJobFailed: Worker 1 exited 2",
        ),
    ],
)
def test_tfjob_readiness(conditions, state, detail):
    verdict = readiness.readiness({"kind": "TFJob", "metadata": {"name": "t"}, "status": {"conditions": conditions}})
    assert (verdict.state, verdict.detail) == (state, detail)


def deployment(generation=2, observed=2, wanted=2, **status):
    """A live Deployment wanting `wanted` replicas; keyword arguments are its status fields."""
    return {
        "kind": "Deployment",
        "metadata": {"name": "d", "generation": generation},
        "spec": {"replicas": wanted},
        "status": {"observedGeneration": observed, **status},
    }


@pytest.mark.parametrize(
    "obj, state, detail",
    [
        (deployment(observed=1, updatedReplicas=2, replicas=2, availableReplicas=2), WAITING, "not yet picked up"),
        (deployment(updatedReplicas=1, replicas=3, availableReplicas=2), WAITING, "1 of 2 replicas updated"),
        (deployment(updatedReplicas=2, replicas=3, availableReplicas=2), WAITING, "1 old replicas"),
        (deployment(updatedReplicas=2, replicas=2, availableReplicas=1), WAITING, "1 of 2 replicas available"),
        (deployment(updatedReplicas=2, replicas=2, availableReplicas=2), DONE, "2 of 2"),
        (
            deployment(
                updatedReplicas=1,
                replicas=2,
                availableReplicas=1,
                conditions=[
                    condition("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "d-1" has timed out')
                ],
            ),
            FAILED,
            "rollout stuck: ProgressDeadlineExceeded",
        ),
    ],
)
def test_deployment_readiness(obj, state, detail):
    verdict = readiness.readiness(obj)
    assert verdict.state == state and detail in verdict.detail


def test_missing_objects_wait_and_other_kinds_are_done():
    assert readiness.readiness(None).state == WAITING
    assert readiness.readiness({"kind": "Service", "metadata": {"name": "s"}}).state == DONE
