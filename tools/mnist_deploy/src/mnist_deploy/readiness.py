"""Pure decisions on live objects (as dicts from the API): done, still going, or failed."""

from __future__ import annotations

from dataclasses import dataclass

WAITING, DONE, FAILED = "waiting", "done", "failed"


@dataclass(frozen=True)
class Readiness:
    state: str
    detail: str


def _true_condition(obj: dict, kind: str) -> dict | None:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def _explain(condition: dict) -> str:
    parts = [condition.get("reason"), condition.get("message")]
    return ": ".join(part for part in parts if part) or condition["type"]


def job_readiness(job: dict) -> Readiness:
    """A batch/v1 Job: its Complete or Failed condition is final."""
    if _true_condition(job, "Complete"):
        return Readiness(DONE, "completed")
    failed = _true_condition(job, "Failed")
    if failed:
        return Readiness(FAILED, f"failed: {_explain(failed)}")
    status = job.get("status", {})
    return Readiness(WAITING, f"{status.get('active', 0)} running, {status.get('failed', 0)} failed so far")


def tfjob_readiness(tfjob: dict) -> Readiness:
    """A kubeflow.org/v1 TFJob: Succeeded or Failed is final; otherwise the latest condition."""
    if _true_condition(tfjob, "Succeeded"):
        return Readiness(DONE, "succeeded")
    failed = _true_condition(tfjob, "Failed")
    if failed:
        return Readiness(FAILED, f"failed: {_explain(failed)}")
    conditions = tfjob.get("status", {}).get("conditions") or []
    latest = conditions[-1]["type"] if conditions else "not yet seen by the training operator"
    return Readiness(WAITING, latest)


def deployment_readiness(deployment: dict) -> Readiness:
    """An apps/v1 Deployment: its current revision rolled out, every replica available."""
    metadata, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status", {})
    if status.get("observedGeneration", 0) < metadata.get("generation", 1):
        return Readiness(WAITING, "the new revision is not yet picked up by the controller")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return Readiness(FAILED, f"rollout stuck: {_explain(condition)}")
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return Readiness(WAITING, f"{updated} of {wanted} replicas updated")
    if status.get("replicas", 0) > updated:
        return Readiness(WAITING, f"{status['replicas'] - updated} old replicas still terminating")
    if available < wanted:
        return Readiness(WAITING, f"{available} of {wanted} replicas available")
    return Readiness(DONE, f"{available} of {wanted} replicas available")


CHECKS = {"Job": job_readiness, "TFJob": tfjob_readiness, "Deployment": deployment_readiness}


def needs_waiting(obj: dict) -> bool:
    return obj["kind"] in CHECKS


def readiness(obj: dict | None) -> Readiness:
    """Any object; one that is gone is waiting (it may not be created yet), others are done."""
    if obj is None:
        return Readiness(WAITING, "does not exist yet")
    check = CHECKS.get(obj["kind"])
    return check(obj) if check else Readiness(DONE, "exists")
