"""`deploy`, `status` and `undeploy` on a render: the stages of order.plan, applied and waited
for one after the other, under the namespace's deploy lock, with the render checked by a
server-side dry run first and recorded in an ApplySet inventory (what left it is pruned)."""

from __future__ import annotations

from mnist_common.rollout.transitions import DEFAULT_CANARY_PERCENT
from mnist_deploy import applyset, preflight, publish
from mnist_deploy.apply import apply_stage
from mnist_deploy.cluster import Cluster
from mnist_deploy.errors import DeployError
from mnist_deploy.lock import LEASE_SECONDS, DeployLock
from mnist_deploy.observed import STATES, observed_state
from mnist_deploy.order import describe, plan, teardown_order
from mnist_deploy.readiness import needs_waiting, readiness
from mnist_deploy.waiting import Poller

# How long each stage may take before the deploy gives up (seconds).
STAGE_TIMEOUTS = {"setup": 120, "data": 1800, "training": 7200, "export": 1800, "serving": 900}
DELETE_TIMEOUT = 300
STORAGE_KINDS = {"PersistentVolumeClaim", "Namespace"}
# Kinds the deploy itself writes: the lock and the inventory's parent.
BOOKKEEPING = ({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}, {"apiVersion": "v1", "kind": "Secret"})


def deploy(
    cluster: Cluster,
    objects: list[dict],
    poller: Poller,
    timeouts: dict[str, float] | None = None,
    delete_timeout: float = DELETE_TIMEOUT,
    lock_identity: str | None = None,
    lease_seconds: int = LEASE_SECONDS,
    rerun_jobs: bool = False,
    canary_percent: float = DEFAULT_CANARY_PERCENT,
) -> None:
    """Apply the render in stages, waiting for each; rerun_jobs (TRAIN=force) runs the data,
    training and export workloads again even where the same spec already ran. A version the
    export stage publishes goes to the rollout (publish.py): stable if first, else the canary."""
    timeouts = {**STAGE_TIMEOUTS, **(timeouts or {})}
    namespace = applyset.render_namespace(objects)
    # Every kind first: a missing CRD (TFJob, PodMonitoring, ...) stops the deploy before
    # anything is applied, not hours later when training is due.
    kinds = {(obj["apiVersion"], obj["kind"]): obj for obj in [*objects, *BOOKKEEPING]}
    for obj in kinds.values():
        cluster.ensure_kind(obj)
    members = [applyset.as_member(obj, namespace) for obj in objects]
    # A namespace that does not exist yet is created first: the lock lives in it, and the
    # server refuses even a dry run of an object in a missing namespace. One that exists is
    # applied in setup, after the lock.
    created = []
    for obj in members:
        if obj["kind"] == "Namespace" and cluster.get(obj) is None:
            cluster.apply(obj)
            poller.report(f"  created {describe(obj)}")
            created.append(obj)
    rest = [obj for obj in members if obj not in created]
    lock = DeployLock(cluster, namespace, poller.wall, lock_identity, lease_seconds)
    lock.acquire()
    poller.heartbeats.append(lock.renew_if_due)
    try:
        live_parent = _own_parent(cluster, namespace)
        # An existing namespace gets its labels first: its PodSecurity warn level decides what
        # the dry run below is told about the workloads (a namespace from before `warn` was set
        # would let a template that breaks the profile through).
        for obj in rest:
            if obj["kind"] == "Namespace":
                cluster.apply(obj)
        poller.report(f"== dry run: {len(rest)} objects")
        for warning in preflight.check(cluster, rest):
            poller.report(f"  warning: {warning}")
        wanted_kinds = {applyset.group_kind(obj) for obj in members}
        # The inventory names old and new kinds until pruning is done: a deploy that stops
        # half-way leaves the next one able to find everything.
        known_kinds = applyset.contained_group_kinds(live_parent) | wanted_kinds
        cluster.apply(applyset.parent(namespace, known_kinds))
        upstream_reran = False
        for stage in plan(rest):
            poller.report(f"== {stage.name}: {len(stage.objects)} objects")
            started = apply_stage(cluster, stage.objects, poller, upstream_reran, delete_timeout, rerun_jobs)
            upstream_reran = started or upstream_reran
            poller.until_ready(cluster, stage.objects, timeouts[stage.name])
            if stage.name == "export" and started:
                _publish(cluster, namespace, canary_percent, poller)
        kept = prune(cluster, members, namespace, known_kinds, poller)
        cluster.apply(applyset.parent(namespace, wanted_kinds | {applyset.group_kind(obj) for obj in kept}))
    finally:
        poller.heartbeats.remove(lock.renew_if_due)
        lock.release()
    poller.report(how_to_open(cluster, objects))


def _publish(cluster: Cluster, namespace: str, canary_percent: float, poller: Poller) -> None:
    published = publish.publish_export(cluster, namespace, canary_percent, say=poller.report)
    if published is None:
        poller.report("  export: no new version published; the rollout is unchanged")
    else:
        version, state = published
        poller.report(f"  export: published v{version}; rollout now {state.describe()}")


def _own_parent(cluster: Cluster, namespace: str) -> dict | None:
    live_parent = cluster.get(applyset.parent(namespace, set()))
    foreign = applyset.foreign_tooling(live_parent)
    if foreign:
        raise DeployError(
            f"Secret/{applyset.PARENT_NAME} in namespace {namespace} is the inventory of another "
            f"tool ({foreign}); mnist-deploy will not prune for it"
        )
    return live_parent


def inventory(cluster: Cluster, namespace: str, group_kinds: set[str]) -> list[dict]:
    """The live members of the namespace's ApplySet, of the kinds given."""
    selector = applyset.member_selector(namespace)
    return [obj for group_kind in sorted(group_kinds) for obj in cluster.list_labelled(group_kind, namespace, selector)]


def prune(cluster: Cluster, members: list[dict], namespace: str, group_kinds: set[str], poller: Poller) -> list[dict]:
    """Delete the inventory's objects the render no longer has; storage is kept (and returned),
    as undeploy keeps it: a PVC removed by mistake would take the data with it."""
    kept = []
    for obj in teardown_order(applyset.to_prune(inventory(cluster, namespace, group_kinds), members)):
        if obj["kind"] in STORAGE_KINDS:
            poller.report(
                f"  kept {describe(obj)}: no longer in the render, but storage is not pruned "
                f"(kubectl delete it yourself)"
            )
            kept.append(obj)
            continue
        cluster.delete(obj)
        poller.report(f"  pruned {describe(obj)} (no longer in the render)")
    return kept


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
        return (
            f"The web UI: kubectl -n {namespace} port-forward service/web-ui {port}:{port}"
            f"  then open http://localhost:{port}/"
        )
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
            elif obj["kind"] in STATES:
                state = observed_state(live)
            else:
                state = "present"
            rows.append((describe(obj), stage.name, state))
    return rows


def undeploy(
    cluster: Cluster,
    objects: list[dict] | None,
    poller: Poller,
    delete_storage: bool = False,
    namespace: str | None = None,
    lock_identity: str | None = None,
) -> None:
    """Delete what the inventory of the namespace lists (and the render's objects, if given),
    workloads first. Storage (the PVC, and the namespace that holds it) is kept unless
    delete_storage: data and models survive a redeploy."""
    objects = objects or []
    namespace = namespace or applyset.render_namespace(objects)
    if cluster.get({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}) is None:
        poller.report(f"namespace {namespace} does not exist: nothing to undeploy")
        return
    lock = DeployLock(cluster, namespace, poller.wall, lock_identity)
    lock.acquire()
    namespace_deleted = False
    try:
        live_parent = _own_parent(cluster, namespace)
        if live_parent is None and not objects:
            raise DeployError(
                f"namespace {namespace} has no mnist-deploy inventory (Secret/{applyset.PARENT_NAME}): "
                "pass --manifests to delete the objects of a render"
            )
        listed = inventory(cluster, namespace, applyset.contained_group_kinds(live_parent))
        by_identity = {applyset.identity(obj): obj for obj in [*objects, *listed]}
        kept = []
        ordered = teardown_order(list(by_identity.values()))
        for obj in [obj for obj in ordered if obj["kind"] != "Namespace"]:
            if obj["kind"] in STORAGE_KINDS and not delete_storage:
                poller.report(f"  kept {describe(obj)} (storage; make undeploy DELETE_STORAGE=1 removes it)")
                kept.append(obj)
                continue
            cluster.delete(obj)
            poller.report(f"  deleted {describe(obj)}")
        namespaces = [obj for obj in ordered if obj["kind"] == "Namespace"]
        if delete_storage:
            cluster.delete(applyset.parent(namespace, set()))
            for obj in namespaces:
                cluster.delete(obj)
                poller.report(f"  deleted {describe(obj)}")
                namespace_deleted = namespace_deleted or obj["metadata"]["name"] == namespace
        else:
            for obj in namespaces:
                poller.report(f"  kept {describe(obj)} (storage; make undeploy DELETE_STORAGE=1 removes it)")
            # The inventory now lists just what is left, for the next deploy or undeploy.
            cluster.apply(applyset.parent(namespace, {applyset.group_kind(obj) for obj in kept + namespaces}))
    finally:
        if not namespace_deleted:  # the lease went with the namespace
            lock.release()
