"""The order `make deploy` applies a render in: stages, each waited for before the next.

  setup     everything the workloads refer to (namespace, accounts, config, storage, services,
            policies, load-balancer settings, monitoring), ordered so references exist first
  data      the data Job                      \
  training  the trainer Job or TFJob           > each must finish before the next starts, since
  export    the exporter Job                  /  each reads what the previous one wrote
  serving   TF Serving, the web UI, TensorBoard, their autoscalers and the ingress

A workload's stage comes from its `app.kubernetes.io/component` label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPONENT_LABEL = "app.kubernetes.io/component"
STAGE_OF_COMPONENT = {"data": "data", "trainer": "training", "exporter": "export"}
STAGE_NAMES = ("setup", "data", "training", "export", "serving")
# Kinds that run something (or route to something that runs): they go in a workload stage.
WORKLOAD_KINDS = {"Job", "TFJob", "Deployment", "StatefulSet", "DaemonSet", "HorizontalPodAutoscaler", "Ingress"}
# Within setup: lower first. A ServiceAccount before the objects naming it, a
# BackendConfig before the Service annotated with it, and so on. Unknown kinds go last.
SETUP_RANK = {
    "Namespace": 0,
    "CustomResourceDefinition": 0,
    "ServiceAccount": 1,
    "ClusterRole": 1,
    "Role": 1,
    "ClusterRoleBinding": 2,
    "RoleBinding": 2,
    "ConfigMap": 2,
    "Secret": 2,
    "PersistentVolumeClaim": 2,
    "NetworkPolicy": 3,
    "BackendConfig": 3,
    "FrontendConfig": 3,
    "ManagedCertificate": 3,
    "Service": 4,
    "PodDisruptionBudget": 4,
    "PodMonitoring": 4,
}
UNKNOWN_RANK = 9


@dataclass
class Stage:
    name: str
    objects: list[dict] = field(default_factory=list)


def describe(obj: dict) -> str:
    """`Kind/name` for messages."""
    return f"{obj['kind']}/{obj['metadata']['name']}"


def stage_of(obj: dict) -> str:
    if obj["kind"] not in WORKLOAD_KINDS:
        return "setup"
    component = obj.get("metadata", {}).get("labels", {}).get(COMPONENT_LABEL, "")
    return STAGE_OF_COMPONENT.get(component, "serving")


def plan(objects: list[dict]) -> list[Stage]:
    """The non-empty stages in order; within a stage, setup objects by rank, the rest as given."""
    stages = {name: Stage(name) for name in STAGE_NAMES}
    for obj in objects:
        stages[stage_of(obj)].objects.append(obj)
    stages["setup"].objects.sort(key=lambda obj: SETUP_RANK.get(obj["kind"], UNKNOWN_RANK))
    return [stage for stage in stages.values() if stage.objects]


def teardown_order(objects: list[dict]) -> list[dict]:
    """Deletion order: the reverse of the apply order (workloads before what they use)."""
    return [obj for stage in reversed(plan(objects)) for obj in reversed(stage.objects)]
