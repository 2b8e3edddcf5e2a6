"""Who this process is in a distributed training job, from the TF_CONFIG environment variable.

A Kubeflow TFJob sets TF_CONFIG on every replica, e.g.
    {"cluster": {"chief": ["job-chief-0:2222"], "worker": ["job-worker-0:2222", ...]},
     "task": {"type": "worker", "index": 0}}
MultiWorkerMirroredStrategy reads the same variable; this module only decides what the trainer
itself needs: whether training is distributed, and whether this replica is the chief (the one
that writes checkpoints, logs and the final model into the model dir).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# MultiWorkerMirroredStrategy is all-reduce based: every replica is a chief or a worker.
# Parameter servers and side-car evaluators belong to other strategies.
SUPPORTED_TASK_TYPES = ("chief", "worker")


class TfConfigError(ValueError):
    """TF_CONFIG is set but does not describe a task of a chief/worker cluster."""


@dataclass(frozen=True)
class ClusterRole:
    task_type: str  # "chief" or "worker"
    task_index: int
    num_workers: int  # every replica that trains, the chief included
    is_chief: bool

    @property
    def is_distributed(self) -> bool:
        return self.num_workers > 1

    def describe(self) -> str:
        if not self.is_distributed:
            return "single worker"
        chief = " (chief)" if self.is_chief else ""
        return f"{self.task_type} {self.task_index}{chief} of {self.num_workers} workers"


SINGLE_WORKER = ClusterRole(task_type="worker", task_index=0, num_workers=1, is_chief=True)


def parse_tf_config(raw: str | None) -> ClusterRole:
    """The role described by a TF_CONFIG value; unset or empty means a single worker.

    The chief is the "chief" task when the cluster has one (as a TFJob with a Chief replica
    spec does), otherwise worker 0 (the MultiWorkerMirroredStrategy convention).
    """
    if raw is None or not raw.strip():
        return SINGLE_WORKER
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TfConfigError(f"TF_CONFIG is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise TfConfigError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TfConfigError("TF_CONFIG 'cluster' and 'task' must be JSON objects")
    if not cluster and not task:
        return SINGLE_WORKER

    for task_type, addresses in cluster.items():
        if task_type not in SUPPORTED_TASK_TYPES:
            raise TfConfigError(
                f"TF_CONFIG cluster has a {task_type!r} job; MultiWorkerMirroredStrategy "
                f"supports only {' and '.join(SUPPORTED_TASK_TYPES)}"
            )
        if not isinstance(addresses, list) or not addresses:
            raise TfConfigError(f"TF_CONFIG cluster {task_type!r} must be a non-empty list of host:port")
    if len(cluster.get("chief", [])) > 1:
        raise TfConfigError("TF_CONFIG cluster may have at most one chief")

    task_type = task.get("type")
    task_index = task.get("index", 0)
    if task_type not in SUPPORTED_TASK_TYPES:
        raise TfConfigError(f"TF_CONFIG task type must be one of {', '.join(SUPPORTED_TASK_TYPES)}, got {task_type!r}")
    if not isinstance(task_index, int) or isinstance(task_index, bool) or task_index < 0:
        raise TfConfigError(f"TF_CONFIG task index must be a non-negative integer, got {task_index!r}")
    if task_type not in cluster or task_index >= len(cluster[task_type]):
        raise TfConfigError(f"TF_CONFIG task {task_type} {task_index} is not in the cluster")

    has_chief = "chief" in cluster
    is_chief = task_type == "chief" if has_chief else task_index == 0
    num_workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return ClusterRole(task_type=task_type, task_index=task_index, num_workers=num_workers, is_chief=is_chief)
