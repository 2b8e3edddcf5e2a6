"""Helpers of the resilience tests: pipeline commands, a load generator, waiting, RSS."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

import psutil
import requests

from tests.model_exporter import exporter_helpers

POLL_SECONDS = 1  # the stand-in's --file_system_poll_wait_seconds (tests/web_ui/webui_servers.StandIn)


# A tiny training run: seconds, yet two epochs so a run can be killed in the middle of the second.
# 32 steps per epoch are enough for batch normalisation to settle (about 0.9 validation accuracy).
TRAINER_FLAGS = ("--limit", "1024", "--epochs", "2", "--batch-size", "32", "--seed", "3")
# Variables the trainer and exporter read; the tests pass everything as flags.
PIPELINE_VARIABLES = (
    "TF_CONFIG",
    "DATA_DIR",
    "MODEL_DIR",
    "EPOCHS",
    "BATCH_SIZE",
    "LEARNING_RATE",
    "SEED",
    "TRAIN_LIMIT",
    "TRAIN_DIR",
    "MODEL_BASE_PATH",
    "MIN_ACCURACY",
    "MAX_REGRESSION",
    "KEEP_VERSIONS",
)


def pipeline_env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in PIPELINE_VARIABLES}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    return env


def trainer_command(data_dir: str, model_dir) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mnist_trainer.cli",
        "--data-dir",
        data_dir,
        "--model-dir",
        os.fspath(model_dir),
        *TRAINER_FLAGS,
    ]


def exporter_command(train_dir, data_dir: str, base, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mnist_exporter.cli",
        *exporter_helpers.export_args(train_dir, data_dir, base, *extra),
    ]


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its children (gunicorn's master and workers)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


@dataclasses.dataclass(frozen=True)
class Outcome:
    at: float  # time.monotonic() when the answer arrived
    status: int  # HTTP status, 0 when no HTTP answer came at all
    version: int | None  # the model version that answered (200 only)
    reason: str | None  # the JSON "error" of a refusal; None if the body had none


class WebLoad:
    """Closed-loop POST /api/v1/predict traffic from a few threads, every answer recorded."""

    def __init__(self, url: str, body: dict, threads: int = 3, max_requests: int = 20000, timeout: float = 10):
        self.url, self.body, self.timeout = url, body, timeout
        self.max_requests = max_requests  # a bound, whatever happens
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> WebLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set() and len(self.outcomes) < self.max_requests:
                try:
                    response = session.post(self.url, json=self.body, timeout=self.timeout)
                    outcome = _outcome(response)
                except requests.RequestException as error:
                    outcome = Outcome(time.monotonic(), 0, None, f"{type(error).__name__}: {error}")
                with self._lock:
                    self.outcomes.append(outcome)

    def since(self, moment: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.at >= moment]

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)


def _outcome(response: requests.Response) -> Outcome:
    now = time.monotonic()
    try:
        document = response.json()
    except ValueError:
        return Outcome(now, response.status_code, None, None)
    if response.status_code == 200:
        return Outcome(now, 200, (document.get("model") or {}).get("version"), None)
    reason = document.get("error") if isinstance(document, dict) else None
    return Outcome(now, response.status_code, None, reason if isinstance(reason, str) else None)
