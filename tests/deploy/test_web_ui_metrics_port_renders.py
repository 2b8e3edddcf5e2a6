"""The web UI's metrics port in the manifests: declared once (the container port named `metrics`),
never routed by the Service or the Ingress, scraped by the PodMonitoring through its name, and
admitted by NetworkPolicy only from Managed Prometheus' collector pods (the DaemonSet `collector`
in gmp-system, labelled app.kubernetes.io/name=collector: GoogleCloudPlatform/prometheus-engine,
manifests/operator.yaml)."""

from __future__ import annotations

import re

from mnist_deploy import policy
from tests.deploy.renders import KUSTOMIZE, find

COLLECTOR = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "collector"}},
}


def web_ui_container(objects):
    template = find(objects, "Deployment", "web-ui")["spec"]["template"]
    return template, next(c for c in template["spec"]["containers"] if c["name"] == "web-ui")


def metrics_port(objects) -> int:
    _, container = web_ui_container(objects)
    (port,) = [p for p in container["ports"] if p["name"] == "metrics"]
    return port["containerPort"]


def test_the_port_number_is_written_once_and_handed_to_gunicorn(renders):
    for target, objects in renders.items():
        _, container = web_ui_container(objects)
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["METRICS_PORT"] == str(metrics_port(objects)), target
        assert env["METRICS_PORT"] != env["UI_PORT"], target
    number = str(metrics_port(renders["overlays/gke"]))
    written = [path for path in KUSTOMIZE.rglob("*.yaml") if re.search(rf"\b{number}\b", path.read_text())]
    assert [path.relative_to(KUSTOMIZE).as_posix() for path in written] == ["base/web-ui.yaml"]


def test_neither_the_service_nor_the_ingress_nor_a_probe_reaches_it(renders):
    gke = renders["overlays/gke"]
    port = metrics_port(gke)
    template, container = web_ui_container(gke)
    for service in (obj for obj in gke if obj["kind"] == "Service"):
        if policy.selects(service["spec"].get("selector") or {"-": "-"}, template["metadata"]["labels"]):
            for service_port in service["spec"]["ports"]:
                assert service_port.get("targetPort") not in ("metrics", port), service["metadata"]["name"]
                assert service_port["port"] != port
    # The Ingress routes to Services only (checked above), so it never reaches the port either.
    ingress = find(gke, "Ingress", "web-ui")
    assert ingress["spec"]["defaultBackend"]["service"] == {"name": "web-ui", "port": {"name": "http"}}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == 8080


def test_managed_prometheus_scrapes_it_by_name(renders):
    monitoring = find(renders["overlays/gke"], "PodMonitoring", "web-ui")
    assert monitoring["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


def test_only_the_collector_is_admitted_to_it(renders):
    gke = renders["overlays/gke"]
    port = metrics_port(gke)
    template, _ = web_ui_container(gke)
    admitted = []
    for network_policy in (obj for obj in gke if obj["kind"] == "NetworkPolicy"):
        if not policy.selects(network_policy["spec"]["podSelector"], template["metadata"]["labels"]):
            continue
        for rule in network_policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if not ports or "metrics" in ports or port in ports:
                admitted.extend(rule.get("from", [{"anyone": True}]))
    assert admitted == [COLLECTOR]
