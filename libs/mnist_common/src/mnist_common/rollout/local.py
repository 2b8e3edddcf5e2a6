"""The rollout on one machine (`make run`): the state and the model config are files, and the one
model server is watched through its REST API and its Prometheus page.

    LocalFiles   Store: rollout.json (the web UI's split) and models.config (the model server's
                 --model_config_file), each written whole and renamed into place
    LocalServer  Servers: GET /v1/models/<name> (version states), /labels/<label> (the version a
                 label names), and tfserving_requests_total for predict, classify and regress
"""

from __future__ import annotations

import dataclasses

import requests

from mnist_common import pipeline, storage
from mnist_common.rollout import model_config
from mnist_common.rollout import state as rollout_state
from mnist_common.rollout.model_config import ServerConfig
from mnist_common.rollout.state import RolloutState

SERVER_METRICS_PATH = "/monitoring/prometheus/metrics"
INFERENCE_APIS = ("predict", "classify", "regress")  # what a drain waits for; status/metadata do not count


@dataclasses.dataclass
class LocalFiles:
    state_file: str
    config_file: str
    model_name: str
    base_path: str  # as written into the model config (absolute for TF Serving)

    @property
    def where(self) -> str:
        return self.config_file

    def read(self) -> tuple[RolloutState | None, list[int]]:
        return rollout_state.read(self.state_file), pipeline.published_versions(self.base_path)

    def write_config(self, config: ServerConfig, note: str = "") -> None:
        text = model_config.render(config, self.model_name, self.base_path, note)
        storage.write_bytes_atomic(self.config_file, text.encode())

    def write_state(self, state: RolloutState, previous: RolloutState | None) -> RolloutState:
        return rollout_state.write(self.state_file, state, previous)


@dataclasses.dataclass
class LocalServer:
    rest_url: str
    model_name: str

    def model_url(self, suffix: str = "") -> str:
        return f"{self.rest_url.rstrip('/')}/v1/models/{self.model_name}{suffix}"

    def answers(self) -> bool:
        try:
            requests.get(self.model_url(), timeout=2)
        except requests.RequestException:
            return False
        return True

    def version_states(self) -> dict[str, dict[int, str]]:
        answer = requests.get(self.model_url(), timeout=5)
        states = answer.json().get("model_version_status", []) if answer.status_code == 200 else []
        return {self.rest_url: {int(s["version"]): s["state"] for s in states}}

    def label_versions(self, labels: tuple[str, ...]) -> dict[str, dict[str, int | None]]:
        found: dict[str, int | None] = {}
        for label in labels:
            answer = requests.get(self.model_url(f"/labels/{label}"), timeout=5)
            found[label] = (
                int(answer.json()["model_version_status"][0]["version"]) if answer.status_code == 200 else None
            )
        return {self.rest_url: found}

    def predict_counts(self) -> dict[str, float]:
        from prometheus_client.parser import text_string_to_metric_families

        answer = requests.get(self.rest_url.rstrip("/") + SERVER_METRICS_PATH, timeout=5)
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                api = sample.labels.get("api", "")
                version = sample.labels.get("version", "")
                if sample.name == "tfserving_requests_total" and api in INFERENCE_APIS and version.isdigit():
                    name = f'tfserving_requests_total{{version="{version}",api="{api}"}}'
                    counts[name] = counts.get(name, 0.0) + sample.value
        return counts
