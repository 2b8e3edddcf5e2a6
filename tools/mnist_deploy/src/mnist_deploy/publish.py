"""A model exported in the cluster goes to canary, never straight to 100 %: once the export Job
of a deploy has run, the version it published (its container's termination message,
{"version": N, "published": true}) is recorded in the ConfigMap model-rollout and the rollout's
`publish` transition applied (mnist_common.rollout): the first version becomes stable, a later
one the canary at CANARY_PERCENT. TF Serving and the web UI pick the ConfigMap up without a restart.
"""

from __future__ import annotations

import json

from mnist_common.rollout import configmap
from mnist_common.rollout.state import RolloutState
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


def publish_export(
    cluster: Cluster, namespace: str, canary_percent: float = DEFAULT_CANARY_PERCENT
) -> tuple[int, RolloutState] | None:
    """Record the export Job's new version in the ConfigMap model-rollout; (version, state) or
    None when the export published nothing new."""
    version = exported_version(cluster.list_pods(namespace, f"batch.kubernetes.io/job-name={EXPORT_JOB}"))
    if version is None:
        return None
    live = cluster.get(rollout_configmap(namespace))
    if live is None:
        raise DeployError(f"ConfigMap {configmap.NAME} is missing in {namespace}: the setup stage creates it")
    manifest, state = configmap.after_publish(live.get("data"), version, canary_percent, namespace)
    # The deploy's own labels and annotations (its ApplySet membership, create-only) stay: a
    # server-side apply by the same field manager would drop what it leaves out.
    for key in ("labels", "annotations"):
        if live["metadata"].get(key):
            manifest["metadata"][key] = dict(live["metadata"][key])
    cluster.apply(manifest)
    return version, state
