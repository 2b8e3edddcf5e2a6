"""The rollout state in a cluster: the ConfigMap `model-rollout`, mounted by TF Serving
(models.config, its --model_config_file) and by the web UI (rollout.json, its ROLLOUT_FILE).

    models.config   TF Serving's config rendered from the state (model_config.render)
    rollout.json    the state (state.py's schema); absent until the first rollout, so the web UI
                    sends no label and the `latest` config of the base manifest serves
    published.json  {"versions": [...]}: the versions the cluster's export Job has published;
                    the cluster's model storage (a PVC or gs://) is not readable from here, so
                    this record is what `make canary` checks a version against

The tools reach the cluster through the Kubernetes API (a `KubeAccess` of their own client) and
the rest is here, shared: `ConfigMapStore` writes the ConfigMap one key at a time, so a rollout
reaches TF Serving in phases (versions, then labels) before the web UI's split changes, and
`ClusterServers` reports every TF Serving replica (GET /v1/models/<name> and /labels/<label> of
each pod, through the API server's pod proxy) and the predicts every web UI pod counted (its
`metrics` port, webui_predictions_total by version). What that needs from the cluster:
RBAC get/list on pods and get on pods/proxy in the namespace, get and patch on the ConfigMap; and
a NetworkPolicy that lets the API server (the control plane's address range) reach TF Serving's
port 8501 and the web UI's metrics port.
"""

from __future__ import annotations

import datetime
import json
from typing import Protocol

from mnist_common.rollout import model_config
from mnist_common.rollout.state import RolloutState, RolloutStateError, from_json, parse

NAME = "model-rollout"
MODELS_CONFIG, ROLLOUT_JSON, PUBLISHED_JSON = "models.config", "rollout.json", "published.json"
# Where the cluster's TF Serving finds the versions (kustomize/base/tf-serving.yaml's mount).
BASE_PATH = "/models/mnist"
FIELD_MANAGER = "mnist-rollout"


def read_data(data: dict | None, source: str = f"ConfigMap {NAME}") -> tuple[RolloutState | None, list[int]]:
    """(state or None before the first rollout, published versions) from a ConfigMap's data."""
    data = data or {}
    state = parse(data[ROLLOUT_JSON].encode(), f"{source} {ROLLOUT_JSON}") if data.get(ROLLOUT_JSON) else None
    published: list[int] = []
    if data.get(PUBLISHED_JSON):
        try:
            versions = json.loads(data[PUBLISHED_JSON]).get("versions")
        except (ValueError, AttributeError):
            versions = None
        if not isinstance(versions, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in versions):
            raise RolloutStateError(f'{source} {PUBLISHED_JSON}: expected {{"versions": [N, ...]}}')
        published = sorted(set(versions))
    return state, published


def stamped(state: RolloutState, previous: RolloutState | None) -> RolloutState:
    """`state` as the next generation after `previous`, with the time it was written."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = state.to_json() | {"generation": (previous.generation + 1) if previous else 1, "updated_at": now}
    return from_json(data, "the new rollout state")


SERVING_COMPONENT, WEB_UI_COMPONENT = "tf-serving", "web-ui"  # app.kubernetes.io/component of the pods
SERVING_REST_PORT = 8501
WEB_UI_METRICS_PORT = "metrics"  # the web UI pods' container port for /metrics (no IAP check)


def of_data(data: dict, namespace: str) -> dict:
    """The ConfigMap with these keys, for a server-side apply."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": namespace}, "data": data}


def state_text(state: RolloutState) -> str:
    return json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"


def published_text(published: list[int]) -> str:
    return json.dumps({"versions": sorted(set(published))}) + "\n"


def manifest(
    state: RolloutState, published: list[int], namespace: str, model_name: str = "mnist", base_path: str = BASE_PATH
) -> dict:
    """The whole ConfigMap for a server-side apply: one object, so TF Serving's config and the web
    UI's split change in the same write."""
    config = model_config.render(model_config.server_config(state), model_name, base_path)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": namespace},
        "data": {
            MODELS_CONFIG: config,
            ROLLOUT_JSON: state_text(state),
            PUBLISHED_JSON: published_text(published),
        },
    }


# ---- the cluster as the rollout runner sees it ------------------------------------------------


class KubeAccess(Protocol):
    """What the rollout needs of the Kubernetes API (each tool adapts its own client)."""

    namespace: str

    def read_configmap(self) -> dict | None: ...  # the data of ConfigMap model-rollout; None: absent
    def apply_configmap(self, manifest: dict) -> None: ...
    def pods(self, component: str) -> list[str]: ...  # running pods with app.kubernetes.io/component
    def pod_get(self, pod: str, port: int | str, path: str) -> str: ...  # via the pod proxy; OSError if not


class ConfigMapStore:
    """runner.Store on the ConfigMap: each write changes one key, read fresh, so a write never
    undoes a key another write made."""

    def __init__(self, access: KubeAccess, model_name: str = "mnist", base_path: str = BASE_PATH):
        self.access, self.model_name, self.base_path = access, model_name, base_path
        self.where = f"ConfigMap {NAME} ({MODELS_CONFIG})"

    def read(self) -> tuple[RolloutState | None, list[int]]:
        return read_data(self._data())

    def _data(self) -> dict:
        data = self.access.read_configmap()
        if data is None:
            raise RolloutStateError(
                f"the cluster has no ConfigMap {NAME} in {self.access.namespace}: run make deploy first"
            )
        return dict(data)

    def _write(self, key: str, text: str) -> None:
        data = self._data()
        data[key] = text
        self.access.apply_configmap(of_data(data, self.access.namespace))

    def write_config(self, config: model_config.ServerConfig) -> None:
        self._write(MODELS_CONFIG, model_config.render(config, self.model_name, self.base_path))

    def write_state(self, state: RolloutState, previous: RolloutState | None) -> RolloutState:
        written = stamped(state, previous)
        self._write(ROLLOUT_JSON, state_text(written))
        return written

    def write_published(self, published: list[int]) -> None:
        self._write(PUBLISHED_JSON, published_text(published))


class ClusterServers:
    """runner.Servers over every TF Serving pod and every web UI pod."""

    def __init__(self, access: KubeAccess, model_name: str = "mnist"):
        self.access, self.model_name = access, model_name

    def _serving_json(self, pod: str, suffix: str) -> dict | None:
        try:
            return json.loads(self.access.pod_get(pod, SERVING_REST_PORT, f"v1/models/{self.model_name}{suffix}"))
        except (OSError, ValueError):
            return None

    def replicas(self) -> list[str]:
        return self.access.pods(SERVING_COMPONENT)

    def version_states(self) -> dict[str, dict[int, str]]:
        states = {}
        for pod in self.replicas():
            body = self._serving_json(pod, "") or {}
            states[pod] = {int(s["version"]): s["state"] for s in body.get("model_version_status", [])}
        return states

    def label_versions(self, labels: tuple[str, ...]) -> dict[str, dict[str, int | None]]:
        found = {}
        for pod in self.replicas():
            found[pod] = {}
            for label in labels:
                body = self._serving_json(pod, f"/labels/{label}") or {}
                versions = body.get("model_version_status") or [{}]
                found[pod][label] = int(versions[0]["version"]) if "version" in versions[0] else None
        return found

    def predict_counts(self) -> dict[str, float]:
        """webui_predictions_total per web UI pod and version: predicts only, by construction."""
        from prometheus_client.parser import text_string_to_metric_families

        counts: dict[str, float] = {}
        for pod, text in self.web_ui_metrics().items():
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    version = sample.labels.get("version", "")
                    if sample.name == "webui_predictions_total" and version.isdigit():
                        name = f'webui_predictions_total{{pod="{pod}",version="{version}"}}'
                        counts[name] = counts.get(name, 0.0) + sample.value
        return counts

    def web_ui_metrics(self) -> dict[str, str]:
        """Every web UI pod's /metrics, through its `metrics` port; a pod that does not answer is
        an OSError (its figures would be missing from the sum)."""
        return {
            pod: self.access.pod_get(pod, WEB_UI_METRICS_PORT, "metrics") for pod in self.access.pods(WEB_UI_COMPONENT)
        }
