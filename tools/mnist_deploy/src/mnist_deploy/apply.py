"""Applying a stage. Everything is server-side applied, except that run-once workloads (Jobs,
TFJobs) cannot be changed in place: a Job's pod template is immutable, and a finished TFJob
does not run again. So each carries a hash of its spec, and on a new deploy it is
  kept     if the same spec is already running or has succeeded (a re-run of `make deploy`
           does not retrain for nothing),
  re-run   (deleted, then created) if its spec changed (a new image, new settings), it failed,
           or an earlier stage re-ran (a new model must be exported again); the new run is
           created only once the old object and its pods are gone (a TFJob's pods keep the
           same names from run to run),
  created  if it does not exist.
An object annotated `mnist-deploy/apply: create-only` (the ConfigMap model-rollout, which the
rollout tool owns once it exists) is created when missing and otherwise left as it is, so a
deploy never undoes a rollout.
"""

from __future__ import annotations

import copy
import hashlib
import json

from mnist_deploy.cluster import Cluster
from mnist_deploy.order import describe
from mnist_deploy.readiness import FAILED, readiness
from mnist_deploy.waiting import Poller

SPEC_HASH_ANNOTATION = "mnist-deploy/spec-hash"
RUN_ONCE_KINDS = {"Job", "TFJob"}
APPLY_ANNOTATION, CREATE_ONLY = "mnist-deploy/apply", "create-only"
CREATE, KEEP, RERUN = "create", "keep", "re-run"


def spec_hash(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj.get("spec", {}), sort_keys=True).encode()).hexdigest()[:16]


def with_spec_hash(obj: dict) -> dict:
    stamped = copy.deepcopy(obj)
    stamped["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = spec_hash(obj)
    return stamped


def is_create_only(obj: dict) -> bool:
    return (obj["metadata"].get("annotations") or {}).get(APPLY_ANNOTATION) == CREATE_ONLY


def run_once_decision(existing: dict | None, desired: dict, upstream_reran: bool, force: bool = False) -> str:
    """CREATE, KEEP (the same spec ran, or runs, and nothing before it re-ran) or RERUN; `force`
    (TRAIN=force) re-runs even a finished one with the same spec."""
    if existing is None:
        return CREATE
    if force:
        return RERUN
    same_spec = existing["metadata"].get("annotations", {}).get(SPEC_HASH_ANNOTATION) == spec_hash(desired)
    if same_spec and not upstream_reran and readiness(existing).state != FAILED:
        return KEEP
    return RERUN


def apply_stage(
    cluster: Cluster,
    objects: list[dict],
    poller: Poller,
    upstream_reran: bool = False,
    delete_timeout: float = 300.0,
    rerun_jobs: bool = False,
) -> bool:
    """Apply one stage's objects in order; True if a run-once workload was (re)started."""
    started = False
    for obj in objects:
        if is_create_only(obj) and cluster.get(obj) is not None:
            poller.report(f"  {describe(obj)}: exists, kept (changed by the rollout tool, not by a deploy)")
            continue
        if obj["kind"] not in RUN_ONCE_KINDS:
            cluster.apply(obj)
            poller.report(f"  applied {describe(obj)}")
            continue
        decision = run_once_decision(cluster.get(obj), obj, upstream_reran, force=rerun_jobs)
        if decision == KEEP:
            poller.report(f"  {describe(obj)}: same spec already ran or is running; kept")
            continue
        if decision == RERUN:
            poller.report(f"  {describe(obj)}: deleting the previous run")
            cluster.delete(obj)
            poller.until_gone(cluster, obj, delete_timeout)
            poller.until_pods_gone(cluster, obj, delete_timeout)
        cluster.apply(with_spec_hash(obj))
        poller.report(f"  started {describe(obj)}")
        started = True
    return started
