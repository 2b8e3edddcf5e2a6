"""`deploy`, `status` and `undeploy` on a render: the stages of order.plan, applied and waited
for one after the other."""

from __future__ import annotations

from mnist_deploy.apply import apply_stage
from mnist_deploy.cluster import Cluster
from mnist_deploy.order import describe, plan, teardown_order
from mnist_deploy.readiness import needs_waiting, readiness
from mnist_deploy.waiting import Poller

# How long each stage may take before the deploy gives up (seconds).
STAGE_TIMEOUTS = {"setup": 120, "data": 1800, "training": 7200, "export": 1800, "serving": 900}
STORAGE_KINDS = {"PersistentVolumeClaim", "Namespace"}


def deploy(cluster: Cluster, objects: list[dict], poller: Poller,
           timeouts: dict[str, float] | None = None) -> None:
    timeouts = {**STAGE_TIMEOUTS, **(timeouts or {})}
    # Every kind first: a missing CRD (TFJob, PodMonitoring, ...) stops the deploy before
    # anything is applied, not hours later when training is due.
    for obj in {(obj["apiVersion"], obj["kind"]): obj for obj in objects}.values():
        cluster.ensure_kind(obj)
    upstream_reran = False
    for stage in plan(objects):
        poller.report(f"== {stage.name}: {len(stage.objects)} objects")
        upstream_reran = apply_stage(cluster, stage.objects, poller, upstream_reran) or upstream_reran
        poller.until_ready(cluster, stage.objects, timeouts[stage.name])
    poller.report(how_to_open(cluster, objects))


def how_to_open(cluster: Cluster, objects: list[dict]) -> str:
    """The web UI's address: the ingress (IAP sign-in) if there is one, else a port-forward."""
    ingress = next((obj for obj in objects if obj["kind"] == "Ingress"), None)
    ui = next((obj for obj in objects if obj["kind"] == "Service" and obj["metadata"]["name"] == "web-ui"), None)
    if ingress is not None:
        certificates = [obj for obj in objects if obj["kind"] == "ManagedCertificate"]
        domains = [domain for cert in certificates for domain in cert["spec"].get("domains", [])]
        live = cluster.get(ingress) or {}
        addresses = [entry.get("ip") for entry in live.get("status", {}).get("loadBalancer", {}).get("ingress") or []]
        lines = [f"The web UI: https://{domains[0] if domains else '<your domain>'}/ (sign in with Google; IAP)"]
        if addresses:
            lines.append(f"  DNS: point the domain at {addresses[0]}; the certificate is issued once it resolves.")
        else:
            lines.append("  the load balancer is still being created (a few minutes): `make status` shows its IP")
        return "\n".join(lines)
    if ui is not None:
        namespace = ui["metadata"].get("namespace", "default")
        port = ui["spec"]["ports"][0]["port"]
        return (f"The web UI: kubectl -n {namespace} port-forward service/web-ui {port}:{port}"
                f"  then open http://localhost:{port}/")
    return "This render has no web UI."


def status(cluster: Cluster, objects: list[dict]) -> list[tuple[str, str, str]]:
    """(object, stage, state) for every object of the render, in deploy order."""
    rows = []
    for stage in plan(objects):
        for obj in stage.objects:
            live = cluster.get(obj)
            if live is None:
                state = "missing"
            elif needs_waiting(obj):
                verdict = readiness(live)
                state = f"{verdict.state}: {verdict.detail}"
            else:
                state = "present"
            rows.append((describe(obj), stage.name, state))
    return rows


def undeploy(cluster: Cluster, objects: list[dict], poller: Poller, delete_storage: bool = False) -> None:
    """Delete what the render created, workloads first. Storage (the PVC, and the namespace that
    holds it) is kept unless delete_storage: data and models survive a redeploy."""
    for obj in teardown_order(objects):
        if obj["kind"] in STORAGE_KINDS and not delete_storage:
            poller.report(f"  kept {describe(obj)} (storage; make undeploy DELETE_STORAGE=1 removes it)")
            continue
        cluster.delete(obj)
        poller.report(f"  deleted {describe(obj)}")
