"""The rollout state in a cluster: the ConfigMap `model-rollout`, mounted by TF Serving
(models.config, its --model_config_file) and by the web UI (rollout.json, its ROLLOUT_FILE).

    models.config   TF Serving's config rendered from the state (model_config.render)
    rollout.json    the state (state.py's schema); absent until the first rollout, so the web UI
                    sends no label and the `latest` config of the base manifest serves
    published.json  {"versions": [...]}: the versions the cluster's export Job has published;
                    the cluster's model storage (a PVC or gs://) is not readable from here, so
                    this record is what `make canary` checks a version against

Pure functions: the tools read and write the ConfigMap through the Kubernetes API and hand its
`data` here.
"""

from __future__ import annotations

import datetime
import json

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
            ROLLOUT_JSON: json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n",
            PUBLISHED_JSON: json.dumps({"versions": sorted(set(published))}) + "\n",
        },
    }


def after_publish(data: dict | None, version: int, canary_percent: float, namespace: str) -> tuple[dict, RolloutState]:
    """The ConfigMap once `version` is published: recorded as published, and the `publish`
    transition applied (the first version stable, a later one the canary at canary_percent)."""
    from mnist_common.rollout.transitions import publish

    state, published = read_data(data)
    new = publish(state, version, canary_percent)
    written = new if new == state else stamped(new, state)
    return manifest(written, [*published, version], namespace), written
