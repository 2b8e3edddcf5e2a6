"""An in-memory stand-in for mnist_deploy.cluster.Cluster: it records every call, and each
workload's status follows a script (a list of statuses, one per `get`, the last one repeated).
Pods and events per selector / namespace may be scripted the same way (a list of lists).
Like the API server it refuses (`refuse`: {"Kind/name": reason}) in dry runs and real applies
alike, and create/replace check existence and resourceVersion (409 -> Conflict)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from mnist_deploy.applyset import group_kind
from mnist_deploy.errors import Conflict, DeployError
from mnist_deploy.order import describe
from tests.deploy import pod_security

START = datetime(2026, 1, 1, tzinfo=UTC)
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
    def __init__(
        self,
        scripts: dict[str, list[dict]] | None = None,
        pods: dict[str, list[dict]] | None = None,
        logs: dict[str, str] | None = None,
        existing: list[dict] | None = None,
        missing_kinds: tuple[str, ...] = (),
        refuse: dict[str, str] | None = None,
        pod_scripts: dict[str, list[list[dict]]] | None = None,
        event_scripts: dict[str, list[list[dict]]] | None = None,
    ):
        self.missing_kinds = missing_kinds
        self.refuse = refuse or {}
        self.pod_scripts = {selector: list(steps) for selector, steps in (pod_scripts or {}).items()}
        self.event_scripts = {namespace: list(steps) for namespace, steps in (event_scripts or {}).items()}
        self.version = 0
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

    def apply(self, obj: dict, dry_run: bool = False) -> dict:
        key = describe(obj)
        self.events.append(("dry-run" if dry_run else "apply", key))
        if key in self.refuse:
            raise DeployError(f"the API server refused {key}: 422 Unprocessable Entity: {self.refuse[key]}")
        live = copy.deepcopy(obj)
        live["metadata"]["generation"] = 1
        live["status"] = {}
        if not dry_run:
            self._store(key, live)
        return copy.deepcopy(live)

    def dry_run(self, obj: dict) -> list[str]:
        """A dry run, and the warnings PodSecurity admission would send for it under the stored
        namespace's labels (tests/deploy/pod_security.py)."""
        self.apply(obj, dry_run=True)
        namespace = self.objects.get(f"Namespace/{obj['metadata'].get('namespace')}")
        labels = (namespace or {}).get("metadata", {}).get("labels") or {}
        return pod_security.controller_warnings(labels, obj)

    def _store(self, key: str, live: dict) -> dict:
        self.version += 1
        live["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = live
        return copy.deepcopy(live)

    def create(self, obj: dict) -> dict:
        key = describe(obj)
        self.events.append(("create", key))
        if key in self.objects:
            raise Conflict(f"{key} already exists")
        return self._store(key, copy.deepcopy(obj))

    def replace(self, obj: dict) -> dict:
        key = describe(obj)
        self.events.append(("replace", key))
        live = self.objects.get(key)
        if live is None or live["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            raise Conflict(f"{key}: the object has been modified")
        return self._store(key, copy.deepcopy(obj))

    def list_labelled(self, group_kind_: str, namespace: str, label_selector: str) -> list[dict]:
        self.events.append(("list", group_kind_))
        label, _, value = label_selector.partition("=")
        return [
            copy.deepcopy(obj)
            for obj in self.objects.values()
            if group_kind(obj) == group_kind_
            and obj["metadata"].get("namespace") in (namespace, None)
            and (obj["metadata"].get("labels") or {}).get(label) == value
        ]

    def list_events(self, namespace: str) -> list[dict]:
        steps = self.event_scripts.get(namespace)
        if not steps:
            return []
        return copy.deepcopy(steps.pop(0) if len(steps) > 1 else steps[0])

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
        steps = self.pod_scripts.get(label_selector)
        if steps:
            return copy.deepcopy(steps.pop(0) if len(steps) > 1 else steps[0])
        return copy.deepcopy(self.pods.get(label_selector, []))

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        self.events.append(("pod_proxy_get", f"{pod}:{port}/{path}"))
        raise OSError(f"pod {pod} is not served by this fake")

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

    def wall(self) -> datetime:
        """The same time as a UTC date, for what the API stamps with dates (leases, events)."""
        return START + timedelta(seconds=self.now)
