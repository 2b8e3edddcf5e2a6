"""The server-side dry run before the first stage, and the ApplySet inventory: labels, parent,
pruning, and undeploy from the inventory alone."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import re

import pytest

from mnist_deploy import applyset, cli, deploy, order, preflight
from mnist_deploy.apply import with_spec_hash
from mnist_deploy.errors import DeployError
from mnist_deploy.waiting import Poller
from tests.deploy.fake_cluster import FakeClock, FakeCluster
from tests.deploy.renders import find

PARENT = "Secret/mnist-deploy"


@pytest.fixture
def poller(lines):
    clock = FakeClock()
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall)


def keys(objects):
    return {order.describe(obj) for obj in objects}


# ------------------------------------------------------------------------ dry run ----------


def test_a_refused_serving_object_stops_the_deploy_before_training_starts(renders, poller):
    objects = renders["overlays/gke"]
    reason = (
        'admission webhook "validation.gatekeeper.sh" denied the request: '
        "[require-limits] container <web-ui> has no memory limit"
    )
    cluster = FakeCluster(refuse={"Deployment/web-ui": reason})
    with pytest.raises(DeployError) as refused:
        deploy.deploy(cluster, objects, poller)
    message = str(refused.value)
    assert refused.value.exit_code == 2
    assert "server-side dry run; nothing applied" in message
    assert "Deployment/web-ui" in message and reason in message
    # Nothing of any stage was applied: only the namespace the lock and the dry run need.
    assert cluster.applied() == ["Namespace/mnist"]
    dry_run = [key for action, key in cluster.events if action == "dry-run"]
    assert set(dry_run) == keys(objects) - {"Namespace/mnist"}
    assert cluster.objects["Lease/mnist-deploy"]["spec"]["holderIdentity"] is None  # released


def test_a_refusal_names_every_refused_object(renders, poller):
    cluster = FakeCluster(
        refuse={
            "Ingress/web-ui": "admission webhook denied the request",
            "TFJob/mnist-train": "spec.runPolicy: unknown field",
        }
    )
    with pytest.raises(DeployError) as refused:
        deploy.deploy(cluster, renders["overlays/gke"], poller)
    message = str(refused.value)
    assert "TFJob/mnist-train" in message and "spec.runPolicy: unknown field" in message
    assert "Ingress/web-ui" in message and "admission webhook denied the request" in message


def test_a_job_that_will_be_rerun_is_dry_run_as_a_new_object(renders):
    job = find(renders["overlays/local"], "Job", "mnist-train")
    assert preflight.dry_run_form(job, None)["metadata"]["name"] == "mnist-train"
    same = with_spec_hash(job)
    assert preflight.dry_run_form(job, same)["metadata"]["name"] == "mnist-train"
    changed = copy.deepcopy(job)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "r.example/mnist-trainer:new"
    probe = preflight.dry_run_form(changed, same)
    # A changed (immutable) pod template would be refused on the old Job: probe a fresh name.
    assert probe["metadata"]["name"] != "mnist-train" and probe["spec"] == changed["spec"]
    service = find(renders["overlays/local"], "Service", "web-ui")
    assert preflight.dry_run_form(service, None) is service


def test_the_cli_exits_2_and_names_the_refused_object(renders, tmp_path, monkeypatch, capsys):
    manifests = tmp_path / "gke.yaml"
    import yaml

    manifests.write_text(yaml.safe_dump_all(renders["overlays/gke"]))
    cluster = FakeCluster(refuse={"Deployment/tf-serving": "quota exceeded"})
    monkeypatch.setattr(cli, "connect", lambda context: cluster)
    assert cli.main(["deploy", "--manifests", os.fspath(manifests), "--poll-seconds", "0.01"]) == 2
    error = capsys.readouterr().err
    assert "Deployment/tf-serving" in error and "quota exceeded" in error
    assert "TFJob/mnist-train" not in cluster.applied()


# ---------------------------------------------------------------------- inventory ----------


def test_the_applyset_id_follows_the_spec():
    digest = hashlib.sha256(b"mnist-deploy.mnist.Secret.").digest()
    expected = "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"
    assert applyset.applyset_id("mnist-deploy", "mnist") == expected
    # The form kubectl accepts for an ID (base64url without padding of a 32-byte digest).
    assert re.fullmatch(r"applyset-[A-Za-z0-9_-]{43}-v1", expected)
    assert applyset.applyset_id("mnist-deploy", "other") != expected


def test_a_deploy_labels_every_object_and_records_its_kinds(renders, poller):
    objects = renders["overlays/gke"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    parent = cluster.objects[PARENT]
    set_id = parent["metadata"]["labels"][applyset.ID_LABEL]
    assert set_id == applyset.applyset_id("mnist-deploy", "mnist")
    annotations = parent["metadata"]["annotations"]
    assert annotations[applyset.TOOLING_ANNOTATION] == "mnist-deploy/v1"
    listed = annotations[applyset.GROUP_KINDS_ANNOTATION].split(",")
    assert listed == sorted(listed)
    assert {
        "Deployment.apps",
        "TFJob.kubeflow.org",
        "Namespace",
        "ManagedCertificate.networking.gke.io",
        "HorizontalPodAutoscaler.autoscaling",
    } <= set(listed)
    for key in keys(objects):
        assert cluster.objects[key]["metadata"]["labels"][applyset.PART_OF_LABEL] == set_id, key


def test_objects_removed_from_the_render_are_pruned_on_the_next_deploy(renders, poller, lines):
    objects = renders["overlays/gke"]
    unrelated = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "someone-elses", "namespace": "mnist"}}
    cluster = FakeCluster(existing=[unrelated])
    deploy.deploy(cluster, objects, poller)
    smaller = [
        obj
        for obj in objects
        if obj["kind"] not in ("HorizontalPodAutoscaler", "ManagedCertificate")
        and order.describe(obj) != "Deployment/tensorboard"
    ]
    assert len(smaller) < len(objects) - 2
    cluster.events.clear()
    deploy.deploy(cluster, smaller, poller)
    deleted = {key for action, key in cluster.events if action == "delete"}
    assert deleted == keys(objects) - keys(smaller)
    assert "ConfigMap/someone-elses" in cluster.objects  # not ours: never pruned
    assert any("pruned HorizontalPodAutoscaler/" in line for line in lines)
    listed = cluster.objects[PARENT]["metadata"]["annotations"][applyset.GROUP_KINDS_ANNOTATION]
    assert "HorizontalPodAutoscaler.autoscaling" not in listed and "ManagedCertificate" not in listed
    # Pruning happens after the stages, never before the new workloads are ready.
    events = cluster.events
    assert events.index(("delete", "Deployment/tensorboard")) > events.index(("apply", "Deployment/web-ui"))


def test_storage_left_out_of_the_render_is_kept(renders, poller, lines):
    objects = renders["overlays/local"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    without_pvc = [obj for obj in objects if obj["kind"] != "PersistentVolumeClaim"]
    deploy.deploy(cluster, without_pvc, poller)
    assert "PersistentVolumeClaim/mnist-storage" in cluster.objects
    assert any("kept PersistentVolumeClaim/mnist-storage" in line for line in lines)
    listed = cluster.objects[PARENT]["metadata"]["annotations"][applyset.GROUP_KINDS_ANNOTATION]
    assert "PersistentVolumeClaim" in listed.split(",")  # still tracked, for undeploy


def test_undeploy_works_from_the_inventory_without_the_render(renders, poller):
    objects = renders["overlays/gke"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    cluster.events.clear()
    deploy.undeploy(cluster, None, poller, namespace="mnist")
    deleted = [key for action, key in cluster.events if action == "delete"]
    assert set(deleted) == keys(objects) - {"Namespace/mnist"}  # the gke render has no PVC
    assert deleted.index("Deployment/web-ui") < deleted.index("Service/web-ui")
    assert deleted.index("TFJob/mnist-train") < deleted.index("ServiceAccount/mnist-trainer")
    listed = cluster.objects[PARENT]["metadata"]["annotations"][applyset.GROUP_KINDS_ANNOTATION]
    assert listed == "Namespace"
    deploy.undeploy(cluster, None, poller, namespace="mnist", delete_storage=True)
    assert cluster.events[-1] == ("delete", "Namespace/mnist")
    assert ("delete", PARENT) in cluster.events


def test_undeploy_of_an_older_render_also_removes_what_only_the_inventory_knows(renders, poller):
    objects = renders["overlays/gke"]
    cluster = FakeCluster()
    deploy.deploy(cluster, objects, poller)
    older_render = [obj for obj in objects if obj["kind"] != "HorizontalPodAutoscaler"]
    deploy.undeploy(cluster, older_render, poller)
    assert not [key for key in cluster.objects if key.startswith("HorizontalPodAutoscaler/")]


def test_undeploy_without_an_inventory_or_a_render_says_what_to_pass(poller, monkeypatch, capsys):
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mnist"}}
    cluster = FakeCluster(existing=[namespace])
    with pytest.raises(DeployError, match="no mnist-deploy inventory.*--manifests"):
        deploy.undeploy(cluster, None, poller, namespace="mnist")
    assert cli.main(["undeploy"]) == 2
    assert "undeploy needs --manifests FILE or --namespace NAMESPACE" in capsys.readouterr().err
    monkeypatch.setattr(cli, "connect", lambda context: cluster)
    assert cli.main(["undeploy", "--namespace", "mnist"]) == 2
    assert "no mnist-deploy inventory" in capsys.readouterr().err


def test_another_tools_inventory_is_left_alone(renders, poller):
    foreign = applyset.parent("mnist", {"Deployment.apps"})
    foreign["metadata"]["annotations"][applyset.TOOLING_ANNOTATION] = "kubectl/v1.31"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mnist"}}
    cluster = FakeCluster(existing=[namespace, foreign])
    with pytest.raises(DeployError, match=r"inventory of another tool \(kubectl/v1.31\)"):
        deploy.deploy(cluster, renders["overlays/local"], poller)
    assert cluster.applied() == []
