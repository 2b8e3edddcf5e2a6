"""Carrying out a rollout plan (steps.py) against a running model server, each step bounded.

The model server is watched through its REST API: GET /v1/models/<name> (version states),
GET /v1/models/<name>/labels/<label> (the version a label names), and its Prometheus page for
the requests each version answered (to know when a retired version is no longer asked for).
"""

from __future__ import annotations

import dataclasses
import time

import requests

from mnist_common import storage
from mnist_common.rollout import model_config
from mnist_common.rollout import state as rollout_state
from mnist_rollout.steps import ApplyConfig, Drain, Step, WriteState

SERVER_METRICS_PATH = "/monitoring/prometheus/metrics"


class RolloutTimeout(RuntimeError):
    """A step did not take effect in time; the message says which and where to look."""


@dataclasses.dataclass
class Target:
    state_file: str
    config_file: str
    model_name: str
    base_path: str  # as written into the model config (absolute for TF Serving)
    rest_url: str
    timeout_seconds: float = 90.0
    quiet_seconds: float = 3.0  # a retired version unasked for this long is unloaded

    def model_url(self, suffix: str = "") -> str:
        return f"{self.rest_url.rstrip('/')}/v1/models/{self.model_name}{suffix}"


def server_answers(target: Target) -> bool:
    try:
        requests.get(target.model_url(), timeout=2)
    except requests.RequestException:
        return False
    return True


def write_config(target: Target, config: model_config.ServerConfig, note: str = "") -> None:
    text = model_config.render(config, target.model_name, target.base_path, note)
    storage.write_bytes_atomic(target.config_file, text.encode())


def version_states(target: Target) -> dict[int, str]:
    answer = requests.get(target.model_url(), timeout=5)
    if answer.status_code != 200:
        return {}
    return {int(s["version"]): s["state"] for s in answer.json().get("model_version_status", [])}


def label_version(target: Target, label: str) -> int | None:
    answer = requests.get(target.model_url(f"/labels/{label}"), timeout=5)
    if answer.status_code != 200:
        return None
    return int(answer.json()["model_version_status"][0]["version"])


def requests_by_version(target: Target) -> dict[int, float]:
    from prometheus_client.parser import text_string_to_metric_families

    answer = requests.get(target.rest_url.rstrip("/") + SERVER_METRICS_PATH, timeout=5)
    counts: dict[int, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "tfserving_requests_total" and sample.labels.get("version", "").isdigit():
                version = int(sample.labels["version"])
                counts[version] = counts.get(version, 0.0) + sample.value
    return counts


def _wait(what: str, condition, target: Target) -> None:
    deadline = time.monotonic() + target.timeout_seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass  # restarting or busy: look again
        time.sleep(0.2)
    raise RolloutTimeout(
        f"{what} did not happen within {target.timeout_seconds:g} s; the model server's log says why "
        f"(a refused {target.config_file} is logged as 'Refused the new model config')"
    )


def wait_applied(target: Target, step: ApplyConfig) -> None:
    config = step.config
    if step.wait_for == "loaded":
        _wait(
            f"loading v{', v'.join(map(str, config.versions))}",
            lambda: all(version_states(target).get(v) == "AVAILABLE" for v in config.versions),
            target,
        )
    elif step.wait_for == "labels":
        _wait(
            "moving the labels to " + ", ".join(f"{k}=v{v}" for k, v in config.labels),
            lambda: all(label_version(target, k) == v for k, v in config.labels),
            target,
        )
    else:

        def unloaded():
            states = version_states(target)
            return all(state != "AVAILABLE" for v, state in states.items() if v not in config.versions)

        _wait("unloading the retired versions", unloaded, target)


def wait_drained(target: Target, versions: tuple[int, ...]) -> None:
    """Until no request has reached `versions` for quiet_seconds (requests in flight finish)."""
    last = {v: requests_by_version(target).get(v, 0.0) for v in versions}
    quiet_since = time.monotonic()

    def quiet() -> bool:
        nonlocal last, quiet_since
        now = {v: requests_by_version(target).get(v, 0.0) for v in versions}
        if now != last:
            last, quiet_since = now, time.monotonic()
        return time.monotonic() - quiet_since >= target.quiet_seconds

    _wait(f"the last requests to v{', v'.join(map(str, versions))}", quiet, target)


def run(
    target: Target, steps: list[Step], previous: rollout_state.RolloutState | None, live: bool, say=print
) -> rollout_state.RolloutState | None:
    """Carry out the steps; without a running server, only the final files are written."""
    written = previous
    for step in steps:
        if isinstance(step, ApplyConfig):
            write_config(target, step.config)
            if live:
                wait_applied(target, step)
                say(
                    f"  model server: versions {list(step.config.versions)}, "
                    + ", ".join(f"{k}=v{v}" for k, v in step.config.labels)
                )
        elif isinstance(step, WriteState):
            written = rollout_state.write(target.state_file, step.state, previous)
            say(f"  web UI split: {written.describe()}")
        elif isinstance(step, Drain) and live:
            wait_drained(target, step.versions)
            say(f"  drained: no request reaches v{', v'.join(map(str, step.versions))} any more")
    return written
