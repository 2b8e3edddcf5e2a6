"""make canary / promote / rollback / rollout-status on a cluster (--cluster): the ConfigMap
model-rollout read and written whole by server-side apply as field manager mnist-rollout, a
version the cluster has not published refused, and the promote guard on the web UI's metrics
(read through the API server's service proxy; here a fake hands them over)."""

from __future__ import annotations

import copy
import json

import pytest
from mnist_rollout import cli, cluster_state, live_metrics

from mnist_common.rollout import configmap
from mnist_common.rollout import state as rollout_state
from mnist_webui import create_app
from mnist_webui.config import Settings
from mnist_webui.samples import HeldOutDigits
from tests.rollout.test_promote_guard import PIXELS, CanaryFailsSometimes


class FakeKube:
    """configmap.KubeAccess as a cluster would answer: the ConfigMap as the API server keeps it
    (every server-side apply recorded), the web UI pods' metrics, the TF Serving pods' REST."""

    namespace = "mnist"

    def __init__(self, data: dict | None, web_ui: dict | None = None, serving: dict | None = None):
        self.data = copy.deepcopy(data)
        self.web_ui = web_ui or {}  # pod -> its /metrics text, or None when it does not answer
        self.serving = serving or {}  # pod -> callable(port, path) -> text
        self.applies: list[dict] = []

    def read_configmap(self):
        return copy.deepcopy(self.data)

    def apply_configmap(self, manifest):
        self.applies.append(copy.deepcopy(manifest))
        self.data = copy.deepcopy(manifest["data"])

    def pods(self, component):
        return sorted(self.web_ui if component == configmap.WEB_UI_COMPONENT else self.serving)

    def pod_get(self, pod, port, path):
        if pod in self.web_ui:
            assert (port, path) == (configmap.WEB_UI_METRICS_PORT, "metrics")
            if self.web_ui[pod] is None:
                raise OSError(f"pod {pod} does not answer")
            return self.web_ui[pod]
        return self.serving[pod](port, path)


def deployed(stable=None, canary=None, percent=0, published=()):
    """A ConfigMap's data as the deploy leaves it: the `latest` config alone, or a rollout."""
    if stable is None:
        return {configmap.MODELS_CONFIG: "model_config_list { }\n"}
    state = configmap.stamped(
        rollout_state.from_json({"schema": 1, "stable": stable, "canary": canary, "canary_percent": percent}, "test"),
        None,
    )
    return configmap.manifest(state, list(published), cluster_state.NAMESPACE)["data"]


def run(cluster, *args):
    return cli.main([*args, "--cluster"], cluster=cluster)


def state_of(cluster):
    return configmap.read_data(cluster.data)


def test_canary_promote_and_rollback_change_the_configmap_by_server_side_apply(capsys):
    cluster = FakeKube(deployed(stable=1, published=[1, 2]))
    assert run(cluster, "canary", "--model-version", "2", "--percent", "20") == 0
    # In phases, one key a write: the versions (labels unchanged), then the labels, then the split.
    load, label, split = cluster.applies
    assert load["metadata"] == {"name": configmap.NAME, "namespace": "mnist"}
    assert (
        "versions: 1" in load["data"][configmap.MODELS_CONFIG]
        and "versions: 2" in load["data"][configmap.MODELS_CONFIG]
    )
    assert 'key: "canary" value: 1' in load["data"][configmap.MODELS_CONFIG]
    assert 'key: "canary" value: 2' in label["data"][configmap.MODELS_CONFIG]
    assert (
        load["data"][configmap.ROLLOUT_JSON]
        == label["data"][configmap.ROLLOUT_JSON]
        != split["data"][configmap.ROLLOUT_JSON]
    )
    state, published = state_of(cluster)
    assert (state.stable, state.canary, state.canary_percent, published) == (1, 2, 20, [1, 2])
    config = cluster.data[configmap.MODELS_CONFIG]
    assert 'key: "stable" value: 1' in config and 'key: "canary" value: 2' in config
    assert "canary v2 at 20 %" in capsys.readouterr().out

    assert run(cluster, "promote", "--force", "1") == 0
    promoted, _ = state_of(cluster)
    assert (promoted.stable, promoted.canary, promoted.previous_stable) == (2, None, 1)
    assert promoted.generation == state.generation + 1

    assert run(cluster, "rollback") == 0
    back, _ = state_of(cluster)
    assert (back.stable, back.canary) == (1, None)
    assert 'key: "canary" value: 1' in cluster.data[configmap.MODELS_CONFIG]
    assert len(cluster.applies) == 3 + 3 + 4  # canary, promote (labels, split, unload), rollback (+ load)


def test_the_server_side_apply_uses_the_rollout_field_manager_with_force():
    class Recorder:
        def server_side_apply(self, resource, **kwargs):
            self.kwargs = kwargs

    store = cluster_state.KubeAccess.__new__(cluster_state.KubeAccess)
    store.namespace = "mnist"
    store._dynamic = Recorder()
    store._dynamic.resources = type("R", (), {"get": staticmethod(lambda **kw: "configmaps")})()
    manifest = {"metadata": {"name": configmap.NAME}}
    store.apply_configmap(manifest)
    assert store._dynamic.kwargs == {
        "body": manifest,
        "namespace": "mnist",
        "field_manager": "mnist-rollout",
        "force_conflicts": True,
    }


def test_a_version_the_cluster_has_not_published_is_refused(capsys):
    cluster = FakeKube(deployed(stable=1, published=[1, 2]))
    assert run(cluster, "canary", "--model-version", "5", "--percent", "10") == 2
    assert "version 5 is not published (published: v1, v2)" in capsys.readouterr().err
    assert cluster.applies == []


def test_before_the_first_export_there_is_nothing_to_roll_out(capsys):
    cluster = FakeKube(deployed())
    assert run(cluster, "canary", "--percent", "10") == 2
    assert "is not published (published: none)" in capsys.readouterr().err
    assert run(cluster, "status") == 0
    assert "no state yet" in capsys.readouterr().out
    assert cluster.applies == []


def test_no_configmap_says_to_deploy_first(capsys):
    assert run(FakeKube(None), "rollback") == 2
    assert "run make deploy first" in capsys.readouterr().err


@pytest.fixture(scope="module")
def failing_canary_metrics(tmp_path_factory) -> str:
    """The web UI's /metrics after a canary failed every third request."""
    tmp_path = tmp_path_factory.mktemp("web-ui")
    state_file = tmp_path / "rollout.json"
    state_file.write_text(json.dumps({"schema": 1, "generation": 1, "stable": 1, "canary": 2, "canary_percent": 30}))
    app = create_app(
        {
            "MNIST_SETTINGS": Settings(rollout_file=str(state_file)),
            "MNIST_CLIENT": CanaryFailsSometimes(),
            "MNIST_DIGITS": HeldOutDigits.load(str(tmp_path / "no-digits")),
        }
    )
    client = app.test_client()
    for _ in range(400):
        client.post("/api/v1/predict", json={"pixels": PIXELS})
    return client.get("/metrics").get_data(as_text=True)


def healthy_metrics() -> str:
    """A web UI pod's /metrics where stable and canary both answered well."""
    lines = ["# TYPE webui_predictions_total counter"]
    for version, label in ((1, "stable"), (2, "canary")):
        lines.append(f'webui_predictions_total{{version="{version}",label="{label}",outcome="ok"}} 50.0')
    return "\n".join(lines) + "\n"


def test_promote_reads_the_web_ui_metrics_and_refuses_a_worse_canary(failing_canary_metrics, capsys):
    # Two web UI pods: one whose canary answers were fine, one that saw the failures. The guard
    # sums both (one pod through the Service's proxy could have shown only the healthy one).
    web_ui = {"web-ui-a": healthy_metrics(), "web-ui-b": failing_canary_metrics}
    cluster = FakeKube(deployed(stable=1, canary=2, percent=30, published=[1, 2]), web_ui)
    assert run(cluster, "promote") == 1
    err = capsys.readouterr().err
    assert "NO  error rate: canary" in err and "every web UI pod's 'metrics' port" in err
    # The failing pod's counts are in the sum: more canary requests than it alone answered.
    alone = live_metrics.figures_by_version(failing_canary_metrics)[2].requests
    summed = live_metrics.figures_by_version(*web_ui.values())[2].requests
    assert summed > alone and f"canary requests: {summed} answered" in err
    assert cluster.applies == []
    assert run(cluster, "status") == 0
    out = capsys.readouterr().out
    assert "published v1, v2" in out and "canary v2 at 30 %" in out and "v2" in out.split("role")[1]


def test_promote_without_metrics_is_refused_unless_forced(capsys):
    cluster = FakeKube(deployed(stable=1, canary=2, percent=30, published=[1, 2]), {"web-ui-a": None})
    assert run(cluster, "promote") == 2
    err = capsys.readouterr().err
    assert "pod proxy" in err and "FORCE=1" in err
    assert run(cluster, "promote", "--force", "1") == 0
    assert state_of(cluster)[0].stable == 2


def test_make_targets_act_on_the_cluster_when_an_overlay_or_context_is_given(repo_root):
    import os
    import subprocess

    def dry(*args, env=None):
        environment = {k: v for k, v in os.environ.items() if k not in ("OVERLAY", "KUBE_CONTEXT", "MAKEFLAGS")}
        done = subprocess.run(
            ["make", "-n", "-s", *args], cwd=repo_root, capture_output=True, text=True, timeout=60, env=environment
        )
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stdout.splitlines() if "-m mnist_rollout" in line)

    for target in ("canary", "promote", "rollback", "rollout-status"):
        assert "--cluster" not in dry(target)
        assert "--cluster" in dry(target, "OVERLAY=gke")
        on_context = dry(target, "KUBE_CONTEXT=kind-mnist")
        assert "--cluster" in on_context and '--context "kind-mnist"' in on_context


def test_the_kubernetes_adapter_reads_the_configmap_and_each_pod_through_the_pod_proxy():
    from kubernetes.client import (
        V1ConfigMap,
        V1Container,
        V1ContainerPort,
        V1ObjectMeta,
        V1Pod,
        V1PodList,
        V1PodSpec,
        V1PodStatus,
    )
    from kubernetes.client.exceptions import ApiException

    class FakeCore:
        def __init__(self, found):
            self.found, self.calls = found, []

        def read_namespaced_config_map(self, name, namespace):
            self.calls.append(("read", name, namespace))
            if self.found is None:
                raise ApiException(status=404, reason="Not Found")
            return V1ConfigMap(data=self.found)

        def list_namespaced_pod(self, namespace, label_selector):
            self.calls.append(("list", namespace, label_selector))
            port = V1ContainerPort(name="metrics", container_port=9090)
            return V1PodList(
                items=[
                    V1Pod(
                        metadata=V1ObjectMeta(name=name),
                        spec=V1PodSpec(containers=[V1Container(name="web-ui", ports=[port])]),
                        status=V1PodStatus(phase=phase),
                    )
                    for name, phase in (("web-ui-a", "Running"), ("web-ui-b", "Pending"))
                ]
            )

        def connect_get_namespaced_pod_proxy_with_path(self, name, namespace, path):
            self.calls.append(("proxy", name, namespace, path))
            return "# metrics\n"

    access = cluster_state.KubeAccess.__new__(cluster_state.KubeAccess)
    access.namespace, access._ports = "mnist", {}
    access._core = FakeCore({configmap.MODELS_CONFIG: "x"})
    assert access.read_configmap() == {configmap.MODELS_CONFIG: "x"}
    assert access.pods("web-ui") == ["web-ui-a"]  # running pods only
    assert access.pod_get("web-ui-a", "metrics", "metrics") == "# metrics\n"  # the named port, as a number
    assert access._core.calls[1:] == [
        ("list", "mnist", "app.kubernetes.io/component=web-ui"),
        ("proxy", "web-ui-a:9090", "mnist", "metrics"),
    ]
    access._core = FakeCore(None)
    assert access.read_configmap() is None


def test_commands_that_only_make_sense_locally_are_refused_on_a_cluster(capsys):
    cluster = FakeKube(deployed(stable=1, published=[1, 2]))
    for command in ("publish", "init", "versions"):
        assert run(cluster, command) == 2
        assert "is not a cluster command" in capsys.readouterr().err
    assert cluster.applies == []
