"""A model exported in the cluster goes to the rollout, never straight to 100 %: the export Job's
termination message names the version, the deploy records it in the ConfigMap model-rollout and
applies the `publish` transition (the first version stable, a later one the canary)."""

from __future__ import annotations

import json

import pytest

from mnist_common.rollout import configmap
from mnist_deploy import applyset, deploy, publish
from mnist_deploy.errors import DeployError
from mnist_deploy.waiting import Poller
from tests.deploy.fake_cluster import FakeCluster
from tests.deploy.renders import find

EXPORT_PODS = f"batch.kubernetes.io/job-name={publish.EXPORT_JOB}"


@pytest.fixture
def poller(clock, lines):
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall)


def exporter_pod(version: int, published: bool = True) -> dict:
    return {
        "metadata": {"name": "mnist-export-abc", "creationTimestamp": "2026-01-01T00:00:10Z"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": publish.EXPORT_CONTAINER,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "message": json.dumps({"version": version, "published": published}),
                        }
                    },
                }
            ],
        },
    }


class ExportingCluster(FakeCluster):
    """The export Job's pod exists while the Job does, and says it published `next_version`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.next_version, self.next_published = 1, True

    def list_pods(self, namespace, label_selector):
        if label_selector == EXPORT_PODS:
            self.events.append(("list_pods", label_selector))
            if "Job/mnist-export" not in self.objects:
                return []
            return [exporter_pod(self.next_version, self.next_published)]
        return super().list_pods(namespace, label_selector)


def rollout_of(cluster: FakeCluster):
    return configmap.read_data(cluster.objects[f"ConfigMap/{configmap.NAME}"]["data"])


def test_the_first_exported_version_becomes_stable_and_a_forced_rerun_goes_to_canary(renders, poller, lines):
    objects = renders["overlays/local"]
    cluster = ExportingCluster()
    deploy.deploy(cluster, objects, poller, canary_percent=15)
    state, published = rollout_of(cluster)
    assert (state.stable, state.canary, published) == (1, None, [1])
    assert any("published v1" in line for line in lines)
    # The deploy's ApplySet label stays on the ConfigMap it wrote.
    labels = cluster.objects[f"ConfigMap/{configmap.NAME}"]["metadata"]["labels"]
    assert labels == find(deploy_members(objects), "ConfigMap", configmap.NAME)["metadata"]["labels"]

    # A plain re-deploy runs no Job, and keeps the ConfigMap the rollout owns.
    cluster.events.clear()
    deploy.deploy(cluster, objects, poller, canary_percent=15)
    assert f"ConfigMap/{configmap.NAME}" not in cluster.applied()
    assert rollout_of(cluster)[0] == state

    # TRAIN=force: data, training and export run again; the new version is the canary, not 100 %.
    cluster.next_version = 2
    cluster.events.clear()
    deploy.deploy(cluster, objects, poller, rerun_jobs=True, canary_percent=15)
    assert [key for action, key in cluster.events if action == "delete"] == [
        "Job/mnist-data",
        "Job/mnist-train",
        "Job/mnist-export",
    ]
    state2, published2 = rollout_of(cluster)
    assert (state2.stable, state2.canary, state2.canary_percent, published2) == (1, 2, 15, [1, 2])
    assert state2.generation == state.generation + 1
    config = cluster.objects[f"ConfigMap/{configmap.NAME}"]["data"][configmap.MODELS_CONFIG]
    assert "versions: 1" in config and "versions: 2" in config and 'key: "canary" value: 2' in config


def deploy_members(objects):
    namespace = applyset.render_namespace(objects)
    return [applyset.as_member(obj, namespace) for obj in objects]


def test_an_export_that_published_nothing_leaves_the_rollout_alone(renders, poller, lines):
    cluster = ExportingCluster()
    cluster.next_published = False
    deploy.deploy(cluster, renders["overlays/local"], poller)
    assert rollout_of(cluster) == (None, [])
    assert any("no new version published" in line for line in lines)


def test_an_export_pod_without_its_result_is_an_error():
    pod = exporter_pod(1)
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = "Error: oops"
    with pytest.raises(DeployError, match="termination message"):
        publish.exported_version([pod])
    assert publish.exported_version([]) is None


def test_the_exporter_writes_its_result_as_the_termination_message(renders, tmp_path):
    from mnist_exporter import cli

    container = find(renders["overlays/local"], "Job", "mnist-export")["spec"]["template"]["spec"]["containers"][0]
    assert "--result-file=/dev/termination-log" in container["args"]
    assert container.get("terminationMessagePath", "/dev/termination-log") == "/dev/termination-log"
    result = tmp_path / "termination-log"
    cli.write_result(str(result), 7, True)
    assert publish.exported_version([exporter_pod_with(result.read_text())]) == 7


def exporter_pod_with(message: str) -> dict:
    pod = exporter_pod(1)
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = message
    return pod


class ServingCluster(ExportingCluster):
    """With a TF Serving pod running: it answers through the pod proxy with what the ConfigMap's
    models.config asks for, as if each version loaded at once."""

    SERVING_PODS = "app.kubernetes.io/component=tf-serving"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rollout_writes: list[dict] = []  # the ConfigMap's data at each apply

    def apply(self, obj, dry_run=False):
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == configmap.NAME and not dry_run:
            self.rollout_writes.append(dict(obj.get("data") or {}))
        return super().apply(obj, dry_run)

    def list_pods(self, namespace, label_selector):
        if label_selector == self.SERVING_PODS:
            return [{"metadata": {"name": "tf-serving-0"}, "status": {"phase": "Running"}}]
        return super().list_pods(namespace, label_selector)

    def pod_proxy_get(self, namespace, pod, port, path):
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        self.events.append(("pod_proxy_get", f"{pod}:{port}/{path}"))
        text = self.objects[f"ConfigMap/{configmap.NAME}"]["data"][configmap.MODELS_CONFIG]
        entry = text_format.Parse(text, model_server_config_pb2.ModelServerConfig()).model_config_list.config[0]
        if "/labels/" in path:
            version = dict(entry.version_labels)[path.rsplit("/", 1)[1]]
            return json.dumps({"model_version_status": [{"version": str(version), "state": "AVAILABLE"}]})
        versions = entry.model_version_policy.specific.versions
        return json.dumps({"model_version_status": [{"version": str(v), "state": "AVAILABLE"} for v in versions]})


def test_with_tf_serving_running_an_export_is_published_in_phases(renders, poller, lines):
    """TF Serving refuses a label moved to a version it has not loaded (ServerCore::
    UpdateModelVersionLabelMap), so the deploy writes the version first, waits for the replica to
    report it, then the labels, then the web UI's split."""
    objects = renders["overlays/local"]
    cluster = ServingCluster()
    deploy.deploy(cluster, objects, poller, canary_percent=15)
    cluster.next_version = 2
    cluster.events.clear()
    deploy.deploy(cluster, objects, poller, rerun_jobs=True, canary_percent=15)
    key = f"ConfigMap/{configmap.NAME}"
    writes = cluster.rollout_writes
    configs = [data[configmap.MODELS_CONFIG] for data in writes]
    splits = [data.get(configmap.ROLLOUT_JSON) for data in writes]
    load = next(i for i, c in enumerate(configs) if "versions: 2" in c)
    assert 'key: "canary" value: 1' in configs[load]  # v2 loads with the labels unchanged
    label = next(i for i, c in enumerate(configs) if 'key: "canary" value: 2' in c)
    split = next(i for i, s in enumerate(splits) if s and '"canary": 2' in s)
    assert load < label < split
    assert ("pod_proxy_get", "tf-serving-0:8501/v1/models/mnist") in cluster.events
    state, published = rollout_of(cluster)
    assert (state.stable, state.canary, state.canary_percent, published) == (1, 2, 15, [1, 2])
    assert key in cluster.applied()
