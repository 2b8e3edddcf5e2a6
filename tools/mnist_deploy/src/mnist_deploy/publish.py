"""A model exported in the cluster goes to canary, never straight to 100 %: once the export Job
of a deploy has run, the version it published (its container's termination message,
{"version": N, "published": true}) is recorded in the ConfigMap model-rollout and the rollout's
`publish` transition applied (mnist_common.rollout): the first version becomes stable, a later
one the canary at CANARY_PERCENT. With TF Serving running, that happens in the rollout's phases
(the version loads on every replica, then the labels move, then the web UI's split): TF Serving
refuses a label moved to a version that is not loaded yet, so one write would never reach it.
"""

from __future__ import annotations

import json

from mnist_common.rollout import configmap, runner, steps, transitions
from mnist_common.rollout.state import RolloutState, RolloutStateError
from mnist_common.rollout.transitions import DEFAULT_CANARY_PERCENT
from mnist_deploy.cluster import Cluster
from mnist_deploy.errors import DeployError

EXPORT_JOB, EXPORT_CONTAINER = "mnist-export", "exporter"


def exported_version(pods: list[dict]) -> int | None:
    """The version a completed export Job's pod says it published; None when it published nothing
    (the same model is already the newest version)."""
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        for status in pod["status"].get("containerStatuses") or []:
            if status.get("name") != EXPORT_CONTAINER:
                continue
            message = ((status.get("state") or {}).get("terminated") or {}).get("message") or ""
            try:
                result = json.loads(message)
            except ValueError:
                raise DeployError(
                    f"the export Job's termination message is not its JSON result: {message[:200]!r}"
                ) from None
            version = result.get("version") if isinstance(result, dict) else None
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise DeployError(f"the export Job's termination message names no version: {message[:200]!r}")
            return version if result.get("published") else None
    return None


def rollout_configmap(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": configmap.NAME, "namespace": namespace}}


class DeployAccess:
    """configmap.KubeAccess over the deploy's Cluster, so the rollout's own store and runner
    carry out the publish (mnist_common.rollout): the same phases as make canary."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster, self.namespace = cluster, namespace
        self._metadata: dict = {}

    def read_configmap(self) -> dict | None:
        live = self.cluster.get(rollout_configmap(self.namespace))
        if live is None:
            return None
        self._metadata = live.get("metadata") or {}
        return live.get("data") or {}

    def apply_configmap(self, manifest: dict) -> None:
        # The deploy's own labels and annotations (its ApplySet membership, create-only) stay: a
        # server-side apply by the same field manager would drop what it leaves out.
        for key in ("labels", "annotations"):
            if self._metadata.get(key):
                manifest["metadata"][key] = dict(self._metadata[key])
        self.cluster.apply(manifest)

    def pods(self, component: str) -> list[str]:
        found = self.cluster.list_pods(self.namespace, f"app.kubernetes.io/component={component}")
        return sorted(
            pod["metadata"]["name"]
            for pod in found
            if (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
        )

    def pod_get(self, pod: str, port, path: str) -> str:
        return self.cluster.pod_proxy_get(self.namespace, pod, port, path)


def publish_export(
    cluster: Cluster, namespace: str, canary_percent: float = DEFAULT_CANARY_PERCENT, say=print
) -> tuple[int, RolloutState] | None:
    """Record the export Job's new version in the ConfigMap model-rollout and apply the publish
    transition in phases (the version loads on every TF Serving replica before a label names it);
    (version, state) or None when the export published nothing new."""
    version = exported_version(cluster.list_pods(namespace, f"batch.kubernetes.io/job-name={EXPORT_JOB}"))
    if version is None:
        return None
    access = DeployAccess(cluster, namespace)
    store = configmap.ConfigMapStore(access)
    try:
        state, published = store.read()
        store.write_published([*published, version])
        new = transitions.publish(state, version, canary_percent)
        if new == state:
            return version, state
        servers = configmap.ClusterServers(access)
        written = runner.run(
            store, servers if servers.replicas() else None, steps.plan(state, new), state, runner.Limits(), say
        )
    except RolloutStateError as error:
        raise DeployError(f"{error} (the setup stage creates it)") from None
    except runner.RolloutTimeout as error:
        raise DeployError(f"publishing v{version}: {error}") from None
    return version, written
