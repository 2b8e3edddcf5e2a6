"""Before the first stage applies: the whole render through a server-side dry run (dryRun=All),
so the API server's refusal of a late stage (a serving Deployment that breaks PodSecurity, a
webhook rejecting the Ingress) is reported before an hour of training, not after it.

The namespace's PodSecurity `warn` level makes the server judge each workload's pod template and
answer with a warning (`would violate PodSecurity ...`) where `enforce` alone would store the
Deployment and refuse only its pods, later. Such a warning fails the preflight like a refusal.

A run-once workload that will be re-run cannot be dry-run under its own name: the server would
compare it with the old run and refuse the changed, immutable pod template. It is dry-run as a
new object under a probe name instead, which is what deleting and re-creating it will be.
"""

from __future__ import annotations

import copy

from mnist_deploy.apply import KEEP, RUN_ONCE_KINDS, run_once_decision, with_spec_hash
from mnist_deploy.cluster import Cluster
from mnist_deploy.errors import DeployError
from mnist_deploy.order import describe

PROBE_SUFFIX = "-dry-run"
# pod-security-admission's warning for a workload (admission.go, EvaluatePod).
POD_SECURITY_WARNING = "would violate PodSecurity"


def dry_run_form(obj: dict, existing: dict | None) -> dict:
    """What to dry-run for obj: itself, or for a run-once workload that will be re-created, a
    copy under a probe name."""
    if obj["kind"] not in RUN_ONCE_KINDS:
        return obj
    if existing is None or run_once_decision(existing, obj, upstream_reran=False) == KEEP:
        return with_spec_hash(obj)
    probe = copy.deepcopy(with_spec_hash(obj))
    probe["metadata"]["name"] = obj["metadata"]["name"][: 63 - len(PROBE_SUFFIX)] + PROBE_SUFFIX
    return probe


def check(cluster: Cluster, objects: list[dict]) -> list[str]:
    """Dry-run every object; raise DeployError listing each refusal and each PodSecurity warning
    (object and the server's words). Returns the other warnings (deprecations), to report.
    Nothing is stored either way."""
    refusals, warnings = [], []
    for obj in objects:
        existing = cluster.get(obj) if obj["kind"] in RUN_ONCE_KINDS else None
        try:
            said = cluster.dry_run(dry_run_form(obj, existing))
        except DeployError as refused:
            refusals.append(f"{describe(obj)}: {refused}")
            continue
        for warning in said:
            (refusals if POD_SECURITY_WARNING in warning else warnings).append(f"{describe(obj)}: {warning}")
    if refusals:
        raise DeployError(
            "the API server would refuse this render, or its pods (server-side dry run; nothing applied):\n  "
            + "\n  ".join(refusals)
        )
    return warnings
