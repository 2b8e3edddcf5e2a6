"""An in-memory stand-in for mnist_deploy.cluster.Cluster: it records every call, and each
workload's status follows a script (a list of statuses, one per `get`, the last one repeated)."""

from __future__ import annotations

import copy

from mnist_deploy.errors import DeployError
from mnist_deploy.order import describe

DONE_STATUS = {
    "Job": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1},
    "TFJob": {"conditions": [{"type": "Created", "status": "True"}, {"type": "Succeeded", "status": "True"}]},
}


def done_status(obj: dict) -> dict:
    if obj["kind"] == "Deployment":
        wanted = obj["spec"].get("replicas", 1)
        return {"observedGeneration": 1, "replicas": wanted, "updatedReplicas": wanted, "availableReplicas": wanted}
    return copy.deepcopy(DONE_STATUS.get(obj["kind"], {}))


class FakeCluster:
    def __init__(self, scripts: dict[str, list[dict]] | None = None, pods: dict[str, list[dict]] | None = None,
                 logs: dict[str, str] | None = None, existing: list[dict] | None = None,
                 missing_kinds: tuple[str, ...] = ()):
        self.missing_kinds = missing_kinds
        self.scripts = {name: list(statuses) for name, statuses in (scripts or {}).items()}
        self.pods, self.logs = pods or {}, logs or {}
        self.objects: dict[str, dict] = {}
        self.events: list[tuple[str, str]] = []
        for obj in existing or []:
            self.objects[describe(obj)] = copy.deepcopy(obj)

    def ensure_kind(self, obj: dict) -> None:
        self.events.append(("ensure_kind", obj["kind"]))
        if obj["kind"] in self.missing_kinds:
            raise DeployError(f"the cluster has no {obj['kind']} ({obj['apiVersion']})")

    def apply(self, obj: dict) -> dict:
        key = describe(obj)
        self.events.append(("apply", key))
        live = copy.deepcopy(obj)
        live["metadata"]["generation"] = 1
        live["status"] = {}
        self.objects[key] = live
        return copy.deepcopy(live)

    def get(self, obj: dict) -> dict | None:
        key = describe(obj)
        self.events.append(("get", key))
        live = self.objects.get(key)
        if live is None:
            return None
        if key in self.scripts:
            script = self.scripts[key]
            live["status"] = copy.deepcopy(script.pop(0) if len(script) > 1 else script[0])
        elif not live.get("status"):
            live["status"] = done_status(live)
        return copy.deepcopy(live)

    def delete(self, obj: dict) -> None:
        self.events.append(("delete", describe(obj)))
        self.objects.pop(describe(obj), None)

    def list_pods(self, namespace: str, label_selector: str) -> list[dict]:
        self.events.append(("list_pods", label_selector))
        return copy.deepcopy(self.pods.get(label_selector, []))

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int) -> str:
        self.events.append(("pod_log", f"{pod}/{container}"))
        if pod not in self.logs:
            raise RuntimeError(f'container "{container}" in pod "{pod}" is waiting to start: image can\'t be pulled')
        return "\n".join(self.logs[pod].splitlines()[-tail_lines:])

    def applied(self) -> list[str]:
        return [key for action, key in self.events if action == "apply"]


class FakeClock:
    """monotonic() and sleep() for a Poller: sleeping just moves time on."""

    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
