"""Traffic in the rendered manifests: network policies in both directions, per-request gRPC
balancing over a headless Service, and a drain before a pod stops. Asserted on every render of
the overlays and component combinations."""

from __future__ import annotations

import re

import pytest

from mnist_deploy import policy
from tests.deploy.renders import KUSTOMIZE, TARGETS, find

GOOGLE_FRONT_ENDS = {"35.191.0.0/16", "130.211.0.0/22"}
METADATA_SERVER = "169.254.169.254/32"


# The renders that include components/network-policies.
POLICY_TARGETS = [
    t for t in TARGETS if "components/network-policies" in (KUSTOMIZE / t / "kustomization.yaml").read_text()
]


def selects(policy_obj: dict, labels: dict) -> bool:
    selector = policy_obj["spec"]["podSelector"]
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        (labels.get(e["key"]) in e["values"]) == (e["operator"] == "In") for e in selector.get("matchExpressions") or []
    )


def egress_rules(objects: list[dict], labels: dict) -> list[dict]:
    return [
        rule
        for obj in objects
        if obj["kind"] == "NetworkPolicy" and selects(obj, labels) and "Egress" in obj["spec"]["policyTypes"]
        for rule in obj["spec"].get("egress") or []
    ]


def ports(rule: dict) -> set[tuple[int, str]]:
    return {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports") or []}


def pod_labels(objects: list[dict]) -> list[tuple[str, dict]]:
    return [(where, template["metadata"].get("labels") or {}) for _, where, template in policy.all_pods(objects)]


def test_the_policy_targets_are_the_renders_with_policies(renders):
    assert POLICY_TARGETS
    assert POLICY_TARGETS == [t for t in TARGETS if any(o["kind"] == "NetworkPolicy" for o in renders[t])]


@pytest.mark.parametrize("target", POLICY_TARGETS)
def test_egress_is_denied_by_default_and_each_pod_gets_what_it_needs(renders, target):
    objects = renders[target]
    deny = find(objects, "NetworkPolicy", "default-deny-egress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Egress"]}
    for where, labels in pod_labels(objects):
        rules = egress_rules(objects, labels)
        dns = [
            r
            for r in rules
            if any(
                peer.get("podSelector", {}).get("matchLabels") == {"k8s-app": "kube-dns"} for peer in r.get("to") or []
            )
        ]
        assert dns and {(53, "UDP"), (53, "TCP")} <= ports(dns[0]), f"{where}: no DNS"
        metadata = [
            r for r in rules if any(p.get("ipBlock", {}).get("cidr") == METADATA_SERVER for p in r.get("to") or [])
        ]
        assert metadata and {(80, "TCP"), (988, "TCP")} <= ports(metadata[0]), f"{where}: no metadata server"
        https = [r for r in rules if (443, "TCP") in ports(r)]
        assert https, f"{where}: no Google APIs"
        for rule in https:  # public addresses only: never the cluster's own
            for peer in rule["to"]:
                assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(peer["ipBlock"]["except"])
        for rule in rules:
            assert rule.get("to"), f"{where}: an egress rule open to every destination"


@pytest.mark.parametrize("target", POLICY_TARGETS)
def test_only_the_web_ui_may_call_tf_serving(renders, target):
    objects = renders[target]
    for where, labels in pod_labels(objects):
        to_serving = [
            r
            for r in egress_rules(objects, labels)
            if any(
                p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "tf-serving"
                for p in r.get("to") or []
            )
        ]
        if labels.get("app.kubernetes.io/name") == "web-ui":
            assert to_serving and {(8500, "TCP")} <= ports(to_serving[0])
        else:
            assert not to_serving, f"{where} may call TF Serving"


@pytest.mark.parametrize("target", POLICY_TARGETS)
def test_web_ui_port_admits_only_google_front_ends_and_metrics(renders, target):
    objects = renders[target]
    ui = {"app.kubernetes.io/name": "web-ui", "app.kubernetes.io/component": "web-ui"}
    for obj in objects:
        if obj["kind"] != "NetworkPolicy" or not selects(obj, ui) or "Ingress" not in obj["spec"]["policyTypes"]:
            continue
        for rule in obj["spec"].get("ingress") or []:
            peers = rule.get("from")
            assert peers, f"{obj['metadata']['name']}: ingress to the web UI from any source"
            if obj["metadata"]["name"] == "rollout-from-control-plane":
                # The API server's pod proxy (the model rollout): the metrics port only, never 8080.
                assert {p["port"] for p in rule["ports"]} == {8501, "metrics"}
                continue
            blocks = {p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p}
            namespaces = [p for p in peers if "namespaceSelector" in p]
            assert blocks <= GOOGLE_FRONT_ENDS and (blocks or namespaces)
            assert all(
                p["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "gmp-system"}
                for p in namespaces
            )
    front = find(objects, "NetworkPolicy", "web-ui-http")["spec"]["ingress"]
    assert {p["ipBlock"]["cidr"] for rule in front for p in rule["from"]} == GOOGLE_FRONT_ENDS


@pytest.mark.parametrize("target", TARGETS)
def test_web_ui_balances_grpc_over_every_tf_serving_pod(renders, target):
    objects = renders[target]
    ui = policy.containers(next(t for _, w, t in policy.all_pods(objects) if "web-ui" in w))[0]
    address = next(v["value"] for v in ui["env"] if v["name"] == "SERVING_GRPC_ADDRESS")
    match = re.fullmatch(r"dns:///([a-z0-9-]+):([0-9]+)", address)
    assert match, f"SERVING_GRPC_ADDRESS={address} is not a dns:/// target gRPC can resolve to every pod"
    service = find(objects, "Service", match.group(1))
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "tf-serving"}
    assert int(match.group(2)) in {p["port"] for p in service["spec"]["ports"]}
    serving = policy.containers(find(objects, "Deployment", "tf-serving")["spec"]["template"])[0]
    channel_args = [a for a in serving["args"] if a.startswith("--grpc_channel_arguments=")]
    age = re.search(r"grpc\.max_connection_age_ms=([0-9]+)", channel_args[0] if channel_args else "")
    assert age and 0 < int(age.group(1)) <= 120_000, "clients would never re-resolve to new replicas"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("deployment", ["web-ui", "tf-serving"])
def test_pods_drain_before_they_stop(renders, target, deployment):
    spec = find(renders[target], "Deployment", deployment)["spec"]["template"]["spec"]
    pause = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    # gunicorn's graceful_timeout (10 s) after the pause, TF Serving's shutdown likewise bounded.
    assert 0 < pause and spec["terminationGracePeriodSeconds"] >= pause + 10 + 5
