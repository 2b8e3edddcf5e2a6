"""The API layer with a fake dynamic client, the failing-pod diagnosis, and the CLI's messages."""

from __future__ import annotations

import json
import os

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError, UnprocessibleEntityError

from mnist_deploy import cli, diagnose
from mnist_deploy.cluster import FIELD_MANAGER, KubeCluster
from mnist_deploy.errors import DeployError
from tests.deploy.renders import KUSTOMIZE, TEST_IMAGES, find


class Result:
    def __init__(self, data):
        self.data = data

    def to_dict(self):
        return self.data


class FakeDynamic:
    """Just enough of kubernetes.dynamic.DynamicClient to see what KubeCluster asks of it."""

    def __init__(self, known_kinds=("Job", "Deployment", "Pod"), error=None):
        self.calls = []
        self.error = error

        class Resources:
            def get(self, api_version, kind):
                if kind not in known_kinds:
                    raise ResourceNotFoundError(
                        f"No matches found for {{'api_version': '{api_version}', 'kind': '{kind}'}}"
                    )
                return (api_version, kind)

        self.resources = Resources()

    def server_side_apply(self, resource, body=None, namespace=None, **kwargs):
        self.calls.append(("apply", resource, namespace, kwargs))
        if self.error:
            raise self.error
        return Result(body)

    def get(self, resource, name=None, namespace=None, label_selector=None):
        self.calls.append(("get", resource, name, namespace, label_selector))
        if resource[1] == "Pod":
            return Result({"items": [{"metadata": {"name": "p"}}]})
        raise NotFoundError(ApiException(status=404, reason="Not Found"))

    def delete(self, resource, name=None, namespace=None, body=None):
        self.calls.append(("delete", resource, name, namespace, body))
        raise NotFoundError(ApiException(status=404, reason="Not Found"))


def test_apply_is_server_side_with_our_field_manager(renders):
    dynamic = FakeDynamic()
    cluster = KubeCluster(None, dynamic_client=dynamic, core_api=object())
    job = find(renders["overlays/local"], "Job", "mnist-train")
    assert cluster.apply(job) == job
    ((action, resource, namespace, options),) = dynamic.calls
    assert (action, resource, namespace) == ("apply", ("batch/v1", "Job"), "mnist")
    assert options == {"field_manager": FIELD_MANAGER, "force_conflicts": True}


def test_missing_objects_are_none_and_deleting_them_is_fine(renders):
    cluster = KubeCluster(None, dynamic_client=FakeDynamic(), core_api=object())
    job = find(renders["overlays/local"], "Job", "mnist-train")
    assert cluster.get(job) is None
    cluster.delete(job)  # no error
    assert cluster.list_pods("mnist", "a=b") == [{"metadata": {"name": "p"}}]


def test_a_kind_the_cluster_lacks_says_what_to_install(renders):
    cluster = KubeCluster(None, dynamic_client=FakeDynamic(), core_api=object())
    with pytest.raises(DeployError, match="install the Kubeflow Training Operator"):
        cluster.apply(find(renders["overlays/gke"], "TFJob", "mnist-train"))
    with pytest.raises(DeployError, match="Managed Service for Prometheus"):
        cluster.get(find(renders["overlays/gke"], "PodMonitoring", "web-ui"))
    with pytest.raises(DeployError, match="this overlay needs a GKE cluster"):
        cluster.ensure_kind(find(renders["overlays/gke"], "BackendConfig", "web-ui"))
    cluster.ensure_kind(find(renders["overlays/gke"], "Deployment", "web-ui"))  # known: no error


def test_a_refused_object_shows_the_api_servers_reason_only(renders):
    refusal = ApiException(status=422, reason="Unprocessable Entity")
    refusal.body = json.dumps({"message": 'pods "x" is forbidden: violates PodSecurity "restricted:latest"'})
    refusal.headers = {"Content-Type": "application/json"}
    cluster = KubeCluster(None, dynamic_client=FakeDynamic(error=UnprocessibleEntityError(refusal)), core_api=object())
    with pytest.raises(DeployError) as error:
        cluster.apply(find(renders["overlays/local"], "Job", "mnist-data"))
    assert str(error.value) == (
        "the API server refused Job/mnist-data: 422 Unprocessable Entity: "
        'pods "x" is forbidden: violates PodSecurity "restricted:latest"'
    )


def pod(name, created, statuses=(), conditions=()):
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"containers": [{"name": "main"}]},
        "status": {"containerStatuses": list(statuses), "conditions": list(conditions)},
    }


def test_the_pod_problem_names_the_container_and_the_cause():
    crashed = pod("a", "1", [{"name": "main", "state": {"terminated": {"exitCode": 1, "reason": "OOMKilled"}}}])
    assert diagnose.pod_problem(crashed) == ("main", "exited with code 1 (OOMKilled)")
    looping = pod("b", "1", [{"name": "main", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
    assert diagnose.pod_problem(looping) == ("main", "CrashLoopBackOff")
    starting = pod("c", "1", [{"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert diagnose.pod_problem(starting) is None
    unscheduled = pod(
        "d",
        "1",
        conditions=[
            {"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available: 3 Insufficient cpu."}
        ],
    )
    assert diagnose.pod_problem(unscheduled) == ("", "not scheduled: 0/3 nodes are available: 3 Insufficient cpu.")
    init_failed = pod("e", "1")
    init_failed["status"]["initContainerStatuses"] = [{"name": "init", "state": {"terminated": {"exitCode": 3}}}]
    assert diagnose.pod_problem(init_failed) == ("init", "exited with code 3 (Error)")


def test_the_newest_troubled_pod_is_the_one_shown():
    healthy_new = pod("new", "2026-01-03T00:00:00Z")
    troubled_old = pod("old", "2026-01-01T00:00:00Z", [{"name": "main", "state": {"terminated": {"exitCode": 2}}}])
    troubled_mid = pod("mid", "2026-01-02T00:00:00Z", [{"name": "main", "state": {"terminated": {"exitCode": 2}}}])
    assert diagnose.pick_pod([troubled_old, healthy_new, troubled_mid])["metadata"]["name"] == "mid"
    assert diagnose.pick_pod([healthy_new])["metadata"]["name"] == "new"
    assert diagnose.pick_pod([]) is None


def test_pod_selectors_per_kind(renders):
    gke = renders["overlays/gke"]
    assert diagnose.pod_selector(find(gke, "Job", "mnist-export")) == "batch.kubernetes.io/job-name=mnist-export"
    assert diagnose.pod_selector(find(gke, "TFJob", "mnist-train")) == "training.kubeflow.org/job-name=mnist-train"
    assert diagnose.pod_selector(find(gke, "Deployment", "tf-serving")) == "app.kubernetes.io/name=tf-serving"


# ------------------------------------------------------------------------------- CLI ----------


def test_render_writes_the_manifests(tmp_path, kubectl, capsys):
    out = tmp_path / "local.yaml"
    args = [
        "render",
        "--overlay",
        os.fspath(KUSTOMIZE / "overlays" / "local"),
        "--out",
        os.fspath(out),
        "--kubectl",
        kubectl,
    ] + [f"--image={name}={ref}" for name, ref in TEST_IMAGES.items()]
    assert cli.main(args) == 0
    assert "mnist-trainer:0123456789ab" in out.read_text()
    assert f"wrote {out}" in capsys.readouterr().out


def test_render_refuses_manifests_that_break_the_rules(tmp_path, kubectl, capsys):
    overlay = tmp_path / "insecure"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources:\n  - {os.path.relpath(KUSTOMIZE / 'overlays' / 'local', overlay)}\n"
        "patches:\n  - target: {kind: Deployment, name: web-ui}\n    patch: |-\n"
        "      - op: replace\n        path: /spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem\n"
        "        value: false\n"
    )
    args = [
        "render",
        "--overlay",
        os.fspath(overlay),
        "--out",
        os.fspath(tmp_path / "out.yaml"),
        "--kubectl",
        kubectl,
    ] + [f"--image={name}={ref}" for name, ref in TEST_IMAGES.items()]
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert (
        "breaks the manifest rules" in error and "Deployment/web-ui container web-ui: readOnlyRootFilesystem" in error
    )
    assert not (tmp_path / "out.yaml").exists()


def test_bad_flags_and_missing_files_are_messages(tmp_path, capsys):
    assert cli.main(["render", "--overlay", "x", "--out", "y", "--set", "PROJECT_ID"]) == 2
    assert "--set 'PROJECT_ID': expected NAME=VALUE" in capsys.readouterr().err
    assert cli.main(["deploy", "--manifests", os.fspath(tmp_path / "gke.yaml")]) == 2
    assert "run 'make render' first" in capsys.readouterr().err


def test_no_cluster_configured_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    manifests = tmp_path / "local.yaml"
    manifests.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: mnist}\n")
    monkeypatch.setenv("KUBECONFIG", os.fspath(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cli.main(["status", "--manifests", os.fspath(manifests)]) == 2
    error = capsys.readouterr().err
    assert "no Kubernetes cluster configured" in error and "make gke-credentials PROJECT_ID=" in error
    assert "Traceback" not in error


def test_an_unreachable_cluster_is_named(tmp_path, monkeypatch, capsys):
    """A kubeconfig whose server is a closed loopback port: the message names the server."""
    manifests = tmp_path / "local.yaml"
    manifests.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: mnist}\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: not-a-token}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", os.fspath(kubeconfig))
    assert cli.main(["status", "--manifests", os.fspath(manifests)]) == 2
    error = capsys.readouterr().err
    assert "cannot reach the Kubernetes API server https://127.0.0.1:1" in error and "Traceback" not in error
    assert "make gke-credentials" in error
