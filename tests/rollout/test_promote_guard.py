"""make promote's guard against live web UI metrics: a canary that fails more often than stable is
refused (exit 1, naming the error rate), FORCE=1 promotes it anyway."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from mnist_rollout import cli
from werkzeug.serving import make_server

from mnist_common import serving_client as sc
from mnist_common.rollout import state as rollout_state
from mnist_webui import create_app
from mnist_webui.config import Settings
from mnist_webui.samples import HeldOutDigits

PIXELS = np.full((28, 28), 0.5).tolist()


class CanaryFailsSometimes(sc.ServingClient):
    """Stable answers v1; every third canary request fails (the injected failure)."""

    protocol = "fake"

    def __init__(self):
        super().__init__("mnist")
        self.canary_calls = 0
        self.lock = threading.Lock()

    def predict(self, images, label=None):
        if label == "canary":
            with self.lock:
                self.canary_calls += 1
                fail = self.canary_calls % 3 == 0
            if fail:
                raise sc.ServingError("injected failure")
        probabilities = np.full((1, 10), 0.01, np.float32)
        probabilities[0, 7] = 0.91
        return sc.Prediction(probabilities, np.array([7]), "mnist", 2 if label == "canary" else 1)

    def model_status(self):
        return sc.ModelStatus("mnist", (sc.VersionStatus(1, "AVAILABLE"), sc.VersionStatus(2, "AVAILABLE")))

    def model_metadata(self):
        return sc.ModelMetadata("mnist", 1, {})

    def close(self):
        pass


@pytest.fixture
def web_ui(tmp_path):
    state_file = tmp_path / "rollout.json"
    state_file.write_text(json.dumps({"schema": 1, "generation": 1, "stable": 1, "canary": 2, "canary_percent": 30}))
    settings = Settings(rollout_file=str(state_file))
    app = create_app(
        {
            "MNIST_SETTINGS": settings,
            "MNIST_CLIENT": CanaryFailsSometimes(),
            "MNIST_DIGITS": HeldOutDigits.load(str(tmp_path / "no-digits")),
        }
    )
    client = app.test_client()
    for _ in range(400):
        client.post("/api/v1/predict", json={"pixels": PIXELS})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state_file, f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    thread.join(timeout=10)


def promote(tmp_path, state_file, metrics_url, *extra):
    base = tmp_path / "models" / "mnist"
    for version in (1, 2):
        (base / str(version)).mkdir(parents=True, exist_ok=True)
        (base / str(version) / "saved_model.pb").write_bytes(b"")
    return cli.main(
        [
            "promote",
            "--state-file",
            str(state_file),
            "--model-config-file",
            str(tmp_path / "models.config"),
            "--model-base-path",
            str(base),
            "--metrics-url",
            metrics_url,
            "--rest-url",
            "http://127.0.0.1:9",
            *extra,
        ]
    )


def test_promote_refuses_a_canary_with_a_higher_error_rate(tmp_path, web_ui, capsys):
    state_file, metrics_url = web_ui
    assert promote(tmp_path, state_file, metrics_url) == 1
    err = capsys.readouterr().err
    objections = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(objections) == 1 and objections[0].startswith("  - error rate: canary")
    # Every figure compared is shown, the ones that passed too.
    assert "refuses the promote" in err and "NO  error rate: canary" in err and "ok  p95 latency: canary" in err
    assert "ok  canary requests: " in err
    assert rollout_state.read(str(state_file)).canary == 2  # nothing changed


def test_force_promotes_it_anyway(tmp_path, web_ui, capsys):
    state_file, metrics_url = web_ui
    assert promote(tmp_path, state_file, metrics_url, "--force", "1") == 0
    promoted = rollout_state.read(str(state_file))
    assert (promoted.stable, promoted.canary, promoted.previous_stable) == (2, None, 1)
    assert "stable v2 at 100 %" in capsys.readouterr().out
