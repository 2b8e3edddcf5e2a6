"""The load balancer's health check and the readiness probe wait longer than /readyz may take.

/readyz is the UI process's own readiness and asks nothing of the model server; what it may wait
for is a free worker thread, which a prediction holds for at most SERVING_TIMEOUT_SECONDS (a
timeout is not retried)."""

from __future__ import annotations

import json

from mnist_webui.config import Settings
from tests.deploy.renders import find


def serving_timeout(deployment: dict) -> float:
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "web-ui")
    value = next((v["value"] for v in container.get("env", []) if v["name"] == "SERVING_TIMEOUT_SECONDS"), None)
    return float(value) if value is not None else Settings().serving_timeout_seconds


def test_the_ingress_health_check_outlasts_what_readyz_may_take(renders):
    gke = renders["overlays/gke"]
    service = find(gke, "Service", find(gke, "Ingress", "web-ui")["spec"]["defaultBackend"]["service"]["name"])
    check = find(
        gke,
        "BackendConfig",
        json.loads(service["metadata"]["annotations"]["cloud.google.com/backend-config"])["default"],
    )["spec"]["healthCheck"]
    assert check["requestPath"] == "/readyz"
    bound = serving_timeout(find(gke, "Deployment", "web-ui"))
    # Stated, not GCE's default (5 s, no more than the bound), and within the interval as GCE requires.
    assert "timeoutSec" in check and bound < check["timeoutSec"] <= check["checkIntervalSec"], (check, bound)


def test_the_readiness_probe_outlasts_what_readyz_may_take(renders):
    for target, objects in renders.items():
        deployment = next((o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "web-ui"), None)
        if deployment is None:
            continue
        container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "web-ui")
        probe = container["readinessProbe"]
        assert probe["httpGet"]["path"] == "/readyz"
        assert probe["timeoutSeconds"] > serving_timeout(deployment), target
