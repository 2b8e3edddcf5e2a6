"""The web UI's traffic split: predicts go to the stable or the canary label by the rollout
state's share, answers and metrics say which version and label replied, the page and
/api/v1/model show the rollout, and a change of the state file is picked up while running."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mnist_rollout import live_metrics

from mnist_common import serving_client as sc
from mnist_common.rollout import state as rollout_state
from mnist_webui import create_app
from mnist_webui.config import ConfigError, Settings, settings_from_env
from tests.web_ui.webui_fakes import FakeServingClient

PIXELS = np.full((28, 28), 0.5).tolist()


class LabelledFakeClient(FakeServingClient):
    """Answers a label with the version the test says it names; `failing` labels raise."""

    def __init__(self, labels: dict[str, int]):
        super().__init__()
        self.labels = labels
        self.failing: set[str] = set()
        self.asked: list[str | None] = []

    def predict(self, images, label=None):
        self.asked.append(label)
        if label in self.failing:
            raise sc.ServingError("injected failure")
        answer = super().predict(images)
        version = self.labels[label] if label else self.version
        return sc.Prediction(answer.probabilities, answer.classes, answer.model_name, version)


def write_state(path, **fields):
    path.write_text(json.dumps({"schema": 1, "generation": 1, **fields}))


@pytest.fixture
def rollout_app(tmp_path, held_out):
    state_file = tmp_path / "rollout.json"
    write_state(state_file, stable=3, canary=4, canary_percent=20)
    fake = LabelledFakeClient({"stable": 3, "canary": 4})
    settings = Settings(rollout_file=str(state_file), rollout_poll_seconds=0.05)
    app = create_app({"MNIST_SETTINGS": settings, "MNIST_CLIENT": fake, "MNIST_DIGITS": held_out, "TESTING": True})
    return app, fake, state_file


def predict(client) -> dict:
    response = client.post("/api/v1/predict", json={"pixels": PIXELS})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_twenty_percent_of_predicts_go_to_the_canary(rollout_app):
    app, fake, _ = rollout_app
    client = app.test_client()
    answers = [predict(client) for _ in range(2500)]
    canary = [a for a in answers if a["model"]["label"] == "canary"]
    assert abs(len(canary) / len(answers) * 100 - 20) <= 3
    # Each answer names the version the label reached.
    assert {a["model"]["version"] for a in canary} == {4}
    assert {a["model"]["version"] for a in answers if a["model"]["label"] == "stable"} == {3}
    assert fake.asked.count("canary") == len(canary)


def test_metrics_carry_version_and_label_and_feed_the_rollout_figures(rollout_app):
    app, fake, _ = rollout_app
    client = app.test_client()
    fake.failing = {"canary"}
    for _ in range(300):
        client.post("/api/v1/predict", json={"pixels": PIXELS})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'webui_predictions_total{label="canary",outcome="error",version="4"}' in text
    assert 'webui_prediction_confidence_bucket{label="stable",le="0.9",version="3"}' in text
    figures = live_metrics.figures_by_version(text)
    assert figures[4].errors == figures[4].requests > 0
    assert figures[3].errors == 0 and figures[3].requests + figures[4].requests == 300
    assert figures[3].mean_confidence == pytest.approx(0.82, abs=1e-6)


def test_the_version_label_values_are_bounded(app):
    metrics = app.extensions["mnist_webui"].metrics
    values = {metrics.version_value(v) for v in range(1, 50)}
    assert "other" in values and len(values) <= 9


def test_a_changed_state_file_is_picked_up_and_a_broken_one_ignored(rollout_app):
    app, _, state_file = rollout_app
    client = app.test_client()
    write_state(state_file, stable=4, generation=2)
    deadline_answers = [predict(client) for _ in range(200)]
    info = client.get("/api/v1/model").get_json()["rollout"]
    # The file is re-read at most every 0.05 s; 200 predicts take longer than that.
    assert info["stable"] == 4 and info["canary"] is None
    assert all(a["model"]["label"] == "stable" for a in deadline_answers[-50:])
    state_file.write_text('{"schema": 1, "stable": "four"}')
    for _ in range(200):
        predict(client)
    assert client.get("/api/v1/model").get_json()["rollout"]["stable"] == 4


def test_the_page_and_the_model_api_show_the_rollout(rollout_app):
    app, _, _ = rollout_app
    client = app.test_client()
    info = client.get("/api/v1/model").get_json()["rollout"]
    assert info["policy"] == "labels"
    assert (info["stable"], info["canary"], info["canary_percent"]) == (3, 4, 20)
    page = client.get("/").get_data(as_text=True)
    assert "rollout: stable <strong>v3</strong>, canary <strong>v4</strong> at 20 %" in page


def test_without_a_rollout_no_label_is_sent(client, fake_client):
    answer = client.post("/api/v1/predict", json={"pixels": PIXELS}).get_json()
    assert answer["model"] == {"name": "mnist", "version": 3}
    assert client.get("/api/v1/model").get_json()["rollout"]["policy"] == "latest"


def test_rollout_settings_come_from_the_environment():
    settings = settings_from_env({"ROLLOUT_FILE": "artifacts/rollout.json", "ROLLOUT_POLL_SECONDS": "0.5"})
    assert (settings.rollout_file, settings.rollout_poll_seconds) == ("artifacts/rollout.json", 0.5)
    with pytest.raises(ConfigError, match="ROLLOUT_POLL_SECONDS"):
        settings_from_env({"ROLLOUT_POLL_SECONDS": "0"})


def test_the_state_file_is_schema_checked(tmp_path):
    bad = tmp_path / "rollout.json"
    for text, expected in [
        ('{"schema": 1, "stable": 2, "canary": 2, "canary_percent": 10}', "also the stable"),
        ('{"schema": 1, "stable": 2, "canary_percent": 10}', "no canary"),
        ('{"schema": 1, "stable": 2, "canary": 3, "canary_percent": 150}', "canary_percent"),
        ('{"schema": 2, "stable": 2}', "schema must be 1"),
        ('{"schema": 1, "stable": 2, "weight": 1}', "unknown field"),
        ("{not json", "not JSON"),
    ]:
        bad.write_text(text)
        with pytest.raises(rollout_state.RolloutStateError, match=expected) as error:
            rollout_state.read(str(bad))
        assert str(bad) in str(error.value)


HOSTILE_STATES = {
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "a field nested 100,000 deep": '{"schema": 1, "stable": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "updated_at nested 900 deep": '{"schema": 1, "stable": 2, "updated_at": ' + "[" * 900 + "]" * 900 + "}",
    "canary_percent nested 900 deep": '{"schema": 1, "stable": 2, "canary": 3, "canary_percent": '
    + "[" * 900
    + "]" * 900
    + "}",
    "a megabyte of padding": '{"schema": 1, "stable": 2, "updated_at": "' + "x" * (1 << 20) + '"}',
    "not UTF-8": b'{"schema": 1, "stable": \xff}',
    "a number of 100,000 digits": '{"schema": 1, "stable": ' + "9" * 100_000 + "}",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_STATES))
def test_a_hostile_state_file_is_refused_and_the_split_in_force_stays(rollout_app, case, caplog):
    """RecursionError, MemoryError-sized values and odd bytes are a refused file like any other:
    predicts and /api/v1/model keep answering with the split in force, and the log says why in
    a line, without a traceback."""
    app, _, state_file = rollout_app
    client = app.test_client()
    assert predict(client)["model"]["label"] in ("stable", "canary")
    content = HOSTILE_STATES[case]
    state_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(rollout_state.RolloutStateError) as error:
        rollout_state.read(str(state_file))
    assert str(state_file) in str(error.value) and len(str(error.value)) < 500
    for _ in range(50):
        predict(client)
    info = client.get("/api/v1/model")
    assert info.status_code == 200
    assert (info.get_json()["rollout"]["stable"], info.get_json()["rollout"]["canary"]) == (3, 4)
    assert "Traceback" not in caplog.text
