"""PodSecurity judged before anything is applied: the namespace warns and audits at `restricted`
as well as enforcing it, and the preflight fails on the server's PodSecurity warning for a
workload whose pods the profile would refuse.

With `enforce` alone the API server stores such a Deployment or Job and refuses only its pods,
later (pod-security-admission, admission/admission.go: ValidatePodController returns at once when
warn and audit are privileged, and EvaluatePod checks enforce for pods only). The fake cluster
answers dry runs the way that code does (tests/deploy/pod_security.py)."""

from __future__ import annotations

import copy

import pytest
from urllib3 import HTTPHeaderDict, HTTPResponse

from mnist_deploy import deploy
from mnist_deploy.cluster import KubeCluster, warning_texts
from mnist_deploy.errors import DeployError
from mnist_deploy.waiting import Poller
from tests.deploy import pod_security
from tests.deploy.fake_cluster import FakeClock, FakeCluster
from tests.deploy.renders import find

LEVELS = ("enforce", "warn", "audit")


@pytest.fixture
def poller(lines):
    clock = FakeClock()
    return Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall)


def namespace_labels(objects):
    return find(objects, "Namespace", "mnist")["metadata"]["labels"]


@pytest.mark.parametrize("target", ["overlays/gke", "overlays/local"])
def test_the_namespace_enforces_warns_and_audits_restricted(renders, target):
    labels = namespace_labels(renders[target])
    for level in LEVELS:
        assert labels[f"pod-security.kubernetes.io/{level}"] == "restricted", level
        assert labels[f"pod-security.kubernetes.io/{level}-version"] == "latest", level


def broken(objects, kind, name, breaks):
    """A copy of the render in which `breaks` spoils one workload's pod template."""
    objects = copy.deepcopy(objects)
    breaks(pod_security.pod_template(find(objects, kind, name))["spec"])
    return objects


def escalating(spec):
    del spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"]


def running_as_root(spec):
    spec["securityContext"]["runAsNonRoot"] = False
    spec["securityContext"]["runAsUser"] = 0


def without_seccomp(spec):
    del spec["securityContext"]["seccompProfile"]


def with_host_path(spec):
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}})


@pytest.mark.parametrize(
    ("kind", "name", "breaks", "reason"),
    [
        ("Deployment", "web-ui", escalating, "allowPrivilegeEscalation != false"),
        ("Deployment", "tf-serving", running_as_root, "runAsNonRoot != true"),
        ("Job", "mnist-export", without_seccomp, "seccompProfile"),
        ("Deployment", "web-ui", with_host_path, "restricted volume types"),
    ],
)
def test_a_render_that_breaks_the_profile_fails_the_preflight(renders, poller, kind, name, breaks, reason):
    objects = broken(renders["overlays/gke"], kind, name, breaks)
    cluster = FakeCluster()
    with pytest.raises(DeployError) as refused:
        deploy.deploy(cluster, objects, poller)
    message = str(refused.value)
    assert f'{kind}/{name}: would violate PodSecurity "restricted:latest": {reason}' in message
    assert "nothing applied" in message
    assert cluster.applied() == ["Namespace/mnist"]  # the lock's namespace, nothing of any stage


def test_a_namespace_from_before_warn_was_set_gets_its_labels_before_the_dry_run(renders, poller):
    objects = broken(renders["overlays/gke"], "Deployment", "web-ui", escalating)
    old_namespace = copy.deepcopy(find(objects, "Namespace", "mnist"))
    for level in ("warn", "audit"):
        for key in (f"pod-security.kubernetes.io/{level}", f"pod-security.kubernetes.io/{level}-version"):
            del old_namespace["metadata"]["labels"][key]
    cluster = FakeCluster(existing=[old_namespace])
    with pytest.raises(DeployError, match="would violate PodSecurity"):
        deploy.deploy(cluster, objects, poller)
    live = cluster.objects["Namespace/mnist"]["metadata"]["labels"]
    assert live["pod-security.kubernetes.io/warn"] == "restricted"


@pytest.mark.parametrize("target", ["overlays/gke", "overlays/local", "tests/local-distributed-network-policies"])
def test_the_committed_renders_draw_no_pod_security_warning(renders, target):
    labels = namespace_labels(renders[target])
    for obj in renders[target]:
        assert pod_security.controller_warnings(labels, obj) == [], obj["metadata"]["name"]


def test_the_stand_in_judges_what_pod_security_admission_judges(renders):
    objects = broken(renders["overlays/gke"], "Deployment", "web-ui", escalating)
    web_ui = find(objects, "Deployment", "web-ui")
    # enforce alone: a workload is not judged (ValidatePodController's short-circuit).
    assert pod_security.controller_warnings({"pod-security.kubernetes.io/enforce": "restricted"}, web_ui) == []
    (warning,) = pod_security.controller_warnings({"pod-security.kubernetes.io/warn": "restricted"}, web_ui)
    assert warning == (
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "web-ui" must set securityContext.allowPrivilegeEscalation=false)'
    )
    # A custom resource's templates are not among defaultPodSpecResources: TFJob pods are judged
    # only when the operator creates them.
    tfjob = find(renders["overlays/gke"], "TFJob", "mnist-train")
    spoiled = copy.deepcopy(tfjob)
    spoiled["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    assert pod_security.controller_warnings({"pod-security.kubernetes.io/warn": "restricted"}, spoiled) == []


def test_other_warnings_are_reported_not_fatal(renders, poller, lines):
    class Deprecating(FakeCluster):
        def dry_run(self, obj):
            said = super().dry_run(obj)
            return said + (["autoscaling/v2beta2 is deprecated"] if obj["kind"] == "HorizontalPodAutoscaler" else [])

    cluster = Deprecating()
    deploy.deploy(cluster, renders["overlays/gke"], poller)
    assert "  warning: HorizontalPodAutoscaler/web-ui: autoscaling/v2beta2 is deprecated" in lines


# ----------------------------------------------- the real client: Warning headers -----------


def test_warning_headers_are_read_as_the_api_server_writes_them():
    # k8s.io/apiserver/pkg/warning: one `299 - "<text>"` header per warning, quotes escaped.
    assert warning_texts(['299 - "would violate PodSecurity \\"restricted:latest\\": seccompProfile"']) == [
        'would violate PodSecurity "restricted:latest": seccompProfile'
    ]


class FakeApiClient:
    """The part of kubernetes.client.ApiClient that DynamicClient.request calls, answering
    with a real urllib3 response that carries Warning headers."""

    def __init__(self, warnings):
        self.warnings = warnings
        self.sent = []

    def select_header_accept(self, accepts):
        return accepts[0]

    def param_serialize(self, method, path, **kwargs):
        self.sent.append((method, path, kwargs["query_params"]))
        return (method, path)

    def call_api(self, method, path, _request_timeout=None):
        headers = HTTPHeaderDict()
        for text in self.warnings:
            headers.add("Warning", f'299 - "{text}"')

        class Answer:
            status = 200
            response = HTTPResponse(body=b"{}", headers=headers, status=200, preload_content=True)

        return Answer()


class FakeResource:
    namespaced = True
    group_version, kind = "apps/v1", "Deployment"

    def path(self, name=None, namespace=None):
        return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def test_the_kube_cluster_returns_the_dry_runs_warnings(renders):
    from kubernetes.dynamic import DynamicClient

    api = FakeApiClient(["would violate PodSecurity x", "second"])
    dynamic = DynamicClient.__new__(DynamicClient)  # no discovery: the resource is handed in
    dynamic.client = api
    cluster = KubeCluster(None, dynamic_client=dynamic, core_api=object())
    cluster._resource = lambda obj: FakeResource()
    assert cluster.dry_run(find(renders["overlays/gke"], "Deployment", "web-ui")) == [
        "would violate PodSecurity x",
        "second",
    ]
    ((method, path, query),) = api.sent
    assert (method, path) == ("PATCH", "/apis/apps/v1/namespaces/mnist/deployments/web-ui")
    assert ("dryRun", "All") in query and ("fieldManager", "mnist-deploy") in query
