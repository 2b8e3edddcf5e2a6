"""What the model rollout needs from the cluster, checked against the rendered manifests rather
than restated: every request the rollout code makes (mnist_deploy's publish after an export,
through the same mnist_common.rollout store and runner as `make canary`) is authorized by the
rendered Role `mnist-rollout`, and every port it dials through the API server's pod proxy is
admitted by a NetworkPolicy from the control plane (or its Konnectivity agents).

The verb of each request is the one the Kubernetes API gives the HTTP request the deploy's
KubeCluster sends for each Cluster method (mnist_deploy/cluster.py), as the API server derives
it (k8s.io/apiserver pkg/endpoints/request/requestinfo.go, RequestInfoFactory.NewRequestInfo:
GET on a named object is `get`, on a collection `list`, PATCH (server-side apply) `patch`; a
subresource such as pods/{name}/proxy is authorized as `pods/proxy`). A Role's rule matches as
kubernetes' plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows does (API group, resource,
resourceNames, verb).

The pod proxy takes a port NUMBER: pkg/registry/core/pod/strategy.go, ResourceLocation, splits
`name:port` and dials the pod's IP at that port verbatim; a port name is not looked up there.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import pytest

from mnist_common.rollout import configmap, runner
from mnist_common.rollout import state as rollout_state
from mnist_deploy import deploy, publish
from mnist_deploy import policy as policy_rules
from mnist_deploy.waiting import Poller
from tests.deploy.renders import find
from tests.deploy.test_export_goes_to_canary import ServingCluster

WEB_UI_PODS = f"app.kubernetes.io/component={configmap.WEB_UI_COMPONENT}"
METRICS_PORT_NUMBER = 9090


@dataclasses.dataclass(frozen=True)
class Request:
    verb: str
    resource: str  # with its subresource: pods/proxy
    name: str = ""
    group: str = ""


# The HTTP request behind each Cluster method (mnist_deploy.cluster.KubeCluster) as the API server
# names it for authorization. obj: the object the method was called with; None for pods.
def requests_of(method: str, obj: dict | None, pod: str = "") -> list[Request]:
    if method == "pod_proxy_get":  # GET /api/v1/namespaces/N/pods/NAME:PORT/proxy/PATH
        return [Request("get", "pods/proxy", pod)]
    if method == "list_pods":  # GET /api/v1/namespaces/N/pods?labelSelector=...
        return [Request("list", "pods")]
    kind = obj["kind"]
    group = obj["apiVersion"].rpartition("/")[0]
    resource = kind.lower() + "s"
    name = obj["metadata"]["name"]
    verb = {"get": "get", "apply": "patch", "create": "create", "replace": "update", "delete": "delete"}[method]
    return [Request(verb, resource, name, group)]


def rule_allows(rule: dict, request: Request) -> bool:
    return (
        any(group in ("*", request.group) for group in rule.get("apiGroups", []))
        and any(resource in ("*", request.resource) for resource in rule.get("resources", []))
        and (not rule.get("resourceNames") or request.name in rule["resourceNames"])
        and any(verb in ("*", request.verb) for verb in rule.get("verbs", []))
    )


class RolloutRecordingCluster(ServingCluster):
    """ServingCluster (one TF Serving pod answering from the ConfigMap) with a web UI pod whose
    `metrics` port is 9090, where the proxy answers as the API server would; records the requests
    the rollout makes, from the first read of ConfigMap model-rollout after the export on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.recording = False
        self.requests: list[Request] = []

    def _record(self, method, obj=None, pod=""):
        if self.recording:
            self.requests.extend(requests_of(method, obj, pod))

    def get(self, obj):
        self._record("get", obj)
        return super().get(obj)

    def apply(self, obj, dry_run=False):
        if not dry_run:
            self._record("apply", obj)
        return super().apply(obj, dry_run)

    def list_pods(self, namespace, label_selector):
        self._record("list_pods")
        if label_selector == WEB_UI_PODS:
            return [
                {
                    "metadata": {"name": "web-ui-0"},
                    "spec": {
                        "containers": [
                            {"name": "web-ui", "ports": [{"name": "metrics", "containerPort": METRICS_PORT_NUMBER}]}
                        ]
                    },
                    "status": {"phase": "Running"},
                }
            ]
        return super().list_pods(namespace, label_selector)

    def pod_proxy_get(self, namespace, pod, port, path):
        self._record("pod_proxy_get", pod=pod)
        if not str(port).isdigit():  # ResourceLocation dials podIP:<port> as given
            raise OSError(f"pod {pod} port {port} /{path}: 503 Service Unavailable (dial tcp: unknown port)")
        if pod == "web-ui-0":
            assert int(port) == METRICS_PORT_NUMBER and path == "metrics", (port, path)
            self.events.append(("pod_proxy_get", f"{pod}:{port}/{path}"))
            return 'webui_predictions_total{endpoint="predict",label="stable",outcome="ok",version="1"} 5.0\n'
        return super().pod_proxy_get(namespace, pod, port, path)


@pytest.fixture
def quick_limits(monkeypatch):
    """The runner's waits, short: the fake answers at once, so only a failure would wait."""
    monkeypatch.setattr(runner, "Limits", functools.partial(runner.Limits, 5.0, 0.05, 0.01))


@pytest.fixture
def record_the_rollout(monkeypatch):
    """The requests made inside the rollout (publish.publish_export), not the deploy's own."""
    original = publish.publish_export

    def recorded(cluster, *args, **kwargs):
        cluster.recording = True
        try:
            return original(cluster, *args, **kwargs)
        finally:
            cluster.recording = False

    monkeypatch.setattr(publish, "publish_export", recorded)


def rolled_out(objects, clock, lines) -> RolloutRecordingCluster:
    """Deploy v1 (stable), v2 (canary), then v3, which replaces the canary: the retired v2 is
    drained (every web UI pod's metrics read) before it is unloaded. Returns the cluster with the
    last rollout's requests."""
    poller = Poller(interval=5, clock=clock.clock, sleep=clock.sleep, report=lines.append, wall=clock.wall)
    cluster = RolloutRecordingCluster()
    for version in (1, 2, 3):
        cluster.next_version, cluster.requests = version, []
        deploy.deploy(cluster, objects, poller, rerun_jobs=version > 1, canary_percent=10)
    return cluster


def test_every_request_of_a_phased_publish_is_allowed_by_the_rendered_role(
    renders, clock, lines, quick_limits, record_the_rollout
):
    for target in ("overlays/local", "overlays/gke"):
        objects = renders[target]
        cluster = rolled_out(objects, clock, lines)
        state, _ = configmap.read_data(cluster.objects[f"ConfigMap/{configmap.NAME}"]["data"])
        assert (state.stable, state.canary) == (1, 3)
        asked = set(cluster.requests)
        # The rollout did use the pod proxy on both kinds of pod, read and wrote the ConfigMap.
        assert (
            Request("get", "pods/proxy", "web-ui-0") in asked and Request("get", "pods/proxy", "tf-serving-0") in asked
        )
        assert Request("patch", "configmaps", configmap.NAME) in asked
        assert ("pod_proxy_get", f"web-ui-0:{METRICS_PORT_NUMBER}/metrics") in cluster.events
        role = find(objects, "Role", "mnist-rollout")
        denied = sorted(str(r) for r in asked if not any(rule_allows(rule, r) for rule in role["rules"]))
        assert not denied, f"{target}: the Role mnist-rollout does not allow {denied}"


def test_the_role_allows_nothing_the_rollout_does_not_ask_for(renders, clock, lines, quick_limits, record_the_rollout):
    objects = renders["overlays/gke"]
    asked = set(rolled_out(objects, clock, lines).requests)
    role = find(objects, "Role", "mnist-rollout")
    for rule in role["rules"]:
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                names = rule.get("resourceNames") or [""]
                assert any(
                    r.resource == resource and r.verb == verb and (r.name in names or names == [""]) for r in asked
                ), f"the Role grants {verb} on {resource} that the rollout never uses"
    binding = find(objects, "RoleBinding", "mnist-rollout")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mnist-rollout"}
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == "mnist"
    assert binding["subjects"]


# ---- the network: the pod proxy's traffic reaches the ports it dials ---------------------------


def port_admitted(rule_ports: list[dict] | None, number: int, named: dict[str, int]) -> bool:
    if not rule_ports:
        return True
    return any(p.get("port") == number or named.get(p.get("port")) == number for p in rule_ports)


def from_control_plane(peer: dict) -> bool:
    """An ipBlock (the control plane's range) or the Konnectivity agents in kube-system."""
    if "ipBlock" in peer:
        return True
    namespace = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
    pods = (peer.get("podSelector") or {}).get("matchLabels") or {}
    return namespace.get("kubernetes.io/metadata.name") == "kube-system" and pods.get("k8s-app") == "konnectivity-agent"


def dialled_ports(objects) -> dict[str, int]:
    """{component: port number} the rollout dials through the pod proxy, from the code's own
    constants and the rendered pods' named ports."""
    dialled = {}
    for component, port in (
        (configmap.SERVING_COMPONENT, configmap.SERVING_REST_PORT),
        (configmap.WEB_UI_COMPONENT, configmap.WEB_UI_METRICS_PORT),
    ):
        deployment = find(objects, "Deployment", component)
        named = {
            p["name"]: p["containerPort"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        dialled[component] = port if isinstance(port, int) else named[port]
    return dialled


@pytest.mark.parametrize("target", ["overlays/gke", "tests/local-distributed-network-policies"])
def test_the_network_policies_admit_the_control_plane_to_the_ports_the_rollout_dials(renders, target):
    objects = renders[target]
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
    assert policies, f"{target} renders no NetworkPolicy"
    for component, number in dialled_ports(objects).items():
        template = find(objects, "Deployment", component)["spec"]["template"]
        labels = template["metadata"]["labels"]
        named = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        admitted = [
            policy["metadata"]["name"]
            for policy in policies
            if "Ingress" in policy["spec"].get("policyTypes", [])
            and policy_rules.selects(policy["spec"]["podSelector"], labels)
            for rule in policy["spec"].get("ingress") or []
            if port_admitted(rule.get("ports"), number, named) and any(map(from_control_plane, rule.get("from") or []))
        ]
        assert admitted, f"{target}: nothing admits the control plane to {component}'s port {number}"


def test_the_control_plane_range_is_declared_once_and_only_for_those_ports(renders):
    objects = renders["overlays/gke"]
    blocks = [
        (policy["metadata"]["name"], peer["ipBlock"]["cidr"], json.dumps(rule.get("ports"), sort_keys=True))
        for policy in objects
        if policy["kind"] == "NetworkPolicy"
        for rule in policy["spec"].get("ingress") or []
        for peer in rule.get("from") or []
        if "ipBlock" in peer and any(p.get("port") in (8501, "metrics") for p in rule.get("ports") or [])
    ]
    assert len(blocks) == 1, blocks
    name, cidr, ports = blocks[0]
    assert cidr.endswith("/28") and json.loads(ports) == [
        {"port": 8501, "protocol": "TCP"},
        {"port": "metrics", "protocol": "TCP"},
    ]


# ---- the rollout command line (make canary/promote/rollback OVERLAY=...) -----------------------


def request_of_client_call(method: str, name: str = "") -> Request:
    """The request behind a kubernetes client call, from the client's own naming of its
    operations (kubernetes-client/python, generated from the API's OpenAPI operation ids:
    read_* is GET on a named object, list_* GET on a collection, connect_get_*_proxy_with_path
    GET on the proxy subresource; the dynamic client's server_side_apply is a PATCH)."""
    if method == "server_side_apply":
        return Request("patch", "configmaps", name)
    resource = {"config_map": "configmaps", "pod": "pods"}
    if method.startswith("connect_"):
        http, _, rest = method.removeprefix("connect_").partition("_namespaced_")
        kind, _, sub = rest.removesuffix("_with_path").partition("_")
        return Request({"get": "get", "post": "create"}[http], f"{resource[kind]}/{sub}", name)
    action, _, kind = method.partition("_namespaced_")
    return Request({"read": "get", "list": "list"}[action], resource[kind], name)


class RecordingKubeClient:
    """CoreV1Api and DynamicClient, as far as mnist_rollout.cluster_state uses them, over one
    ConfigMap, two TF Serving pods answering from it and two web UI pods; records each call."""

    def __init__(self, data: dict):
        from types import SimpleNamespace as Obj

        self.data, self.requests = dict(data), []
        self.resources = Obj(get=lambda **kwargs: Obj(**kwargs))

        def pod(name, ports):
            container = Obj(ports=[Obj(name=n, container_port=p) for n, p in ports.items()])
            return Obj(
                metadata=Obj(name=name, deletion_timestamp=None),
                status=Obj(phase="Running"),
                spec=Obj(containers=[container]),
            )

        self.pods = {
            configmap.SERVING_COMPONENT: [pod(f"tf-serving-{i}", {"grpc": 8500, "http": 8501}) for i in "ab"],
            configmap.WEB_UI_COMPONENT: [
                pod(f"web-ui-{i}", {"http": 8080, "metrics": METRICS_PORT_NUMBER}) for i in "ab"
            ],
        }
        self.obj = Obj

    def read_namespaced_config_map(self, name, namespace):
        self.requests.append(request_of_client_call("read_namespaced_config_map", name))
        return self.obj(data=dict(self.data))

    def server_side_apply(self, resource, body, namespace, field_manager, force_conflicts):
        self.requests.append(request_of_client_call("server_side_apply", body["metadata"]["name"]))
        self.data = dict(body["data"])

    def list_namespaced_pod(self, namespace, label_selector):
        self.requests.append(request_of_client_call("list_namespaced_pod"))
        return self.obj(items=self.pods[label_selector.partition("=")[2]])

    def connect_get_namespaced_pod_proxy_with_path(self, name, namespace, path):
        pod, _, port = name.partition(":")
        self.requests.append(request_of_client_call("connect_get_namespaced_pod_proxy_with_path", pod))
        assert port.isdigit(), f"the pod proxy dials {name} verbatim (ResourceLocation)"
        if pod.startswith("web-ui"):
            assert (int(port), path) == (METRICS_PORT_NUMBER, "metrics")
            return 'webui_predictions_total{label="stable",outcome="ok",version="1"} 5.0\n'
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        assert int(port) == configmap.SERVING_REST_PORT
        text = self.data[configmap.MODELS_CONFIG]
        entry = text_format.Parse(text, model_server_config_pb2.ModelServerConfig()).model_config_list.config[0]
        if "/labels/" in path:
            version = dict(entry.version_labels)[path.rsplit("/", 1)[1]]
            return json.dumps({"model_version_status": [{"version": str(version), "state": "AVAILABLE"}]})
        versions = entry.model_version_policy.specific.versions
        return json.dumps({"model_version_status": [{"version": str(v), "state": "AVAILABLE"} for v in versions]})


def test_every_request_of_the_rollout_command_line_is_allowed_by_the_rendered_role(renders):
    from mnist_rollout import cli, cluster_state

    state = configmap.stamped(
        rollout_state.from_json({"schema": 1, "stable": 1, "canary": 2, "canary_percent": 30}, "test"), None
    )
    client = RecordingKubeClient(configmap.manifest(state, [1, 2, 3], cluster_state.NAMESPACE)["data"])
    access = cluster_state.KubeAccess.__new__(cluster_state.KubeAccess)
    access._core = access._dynamic = client
    access.namespace, access._ports = cluster_state.NAMESPACE, {}
    quick = ["--timeout", "5", "--quiet-seconds", "0.05"]
    # v3 replaces the canary v2 (loaded everywhere, labels moved, split, v2 drained), then rolled back.
    assert cli.main(["canary", "--cluster", "--model-version", "3", *quick], cluster=access) == 0
    assert cli.main(["rollback", "--cluster", *quick], cluster=access) == 0
    asked = set(client.requests)
    assert {r.resource for r in asked} == {"configmaps", "pods", "pods/proxy"}
    assert Request("get", "pods/proxy", "web-ui-b") in asked and Request("get", "pods/proxy", "tf-serving-a") in asked
    for target in ("overlays/local", "overlays/gke"):
        role = find(renders[target], "Role", "mnist-rollout")
        denied = sorted(str(r) for r in asked if not any(rule_allows(rule, r) for rule in role["rules"]))
        assert not denied, f"{target}: the Role mnist-rollout does not allow {denied}"
