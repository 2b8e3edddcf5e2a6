"""The /model page's JSON and shell against a fake model server and files like the exporter's:
each held version's card, evaluation and curves; a version without them said in words; the live
per-version figures from the app's own metrics and the promote guard's verdict on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_common.rollout.guard import PromotePolicy, VersionFigures, judge
from mnist_webui import create_app
from mnist_webui.config import Settings
from mnist_webui.live import Totals, point, quantile
from mnist_webui.model_page import KEY
from mnist_webui.security import CONTENT_SECURITY_POLICY
from tests.web_ui.test_webui_rollout import PIXELS, LabelledFakeClient, write_state

EVALUATION = {
    "schema": 1,
    "split": "test",
    "digits": 20,
    "correct": 18,
    "accuracy": 0.9,
    "interval": {"method": "wilson", "level": 0.95, "low": 0.699, "high": 0.9721},
    "confusion_matrix": [[2 if i == j else 0 for j in range(10)] for i in range(10)],
    "per_class": [{"digit": d, "support": 2, "predicted": 2, "precision": 1.0, "recall": 1.0} for d in range(10)],
    "mistakes_total": 2,
    "mistakes": [
        {"index": 5, "label": 4, "prediction": 9, "confidence": 0.97, "image": "data:image/png;base64,AA=="},
        {"index": 9, "label": 7, "prediction": 1, "confidence": 0.6, "image": "data:image/png;base64,AA=="},
    ],
}


def publish(base, version: int, card: dict | None, evaluation: dict | None = None) -> None:
    folder = base / str(version)
    (folder / "assets.extra").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    if card is not None:
        (folder / "assets.extra" / "model_card.json").write_text(json.dumps(card))
    if evaluation is not None:
        (folder / "assets.extra" / "evaluation.json").write_text(json.dumps(evaluation))


def card(history: bool = True) -> dict:
    training = {
        "epochs": 3,
        "batch_size": 64,
        "inputs": {"epochs": 3, "batch_size": 64, "learning_rate": 0.003, "seed": 1, "architecture": "cnn-v2"},
    }
    if history:
        training["history"] = [
            {"epoch": e, "loss": 1 / e, "accuracy": 0.8 + e / 100, "val_loss": 1.1 / e, "val_accuracy": 0.79 + e / 100}
            for e in (1, 2, 3)
        ]
        training["exported_epoch"] = 3
    return {
        "schema": 1,
        "model_name": "mnist",
        "created": "2026-12-07T23:00:00+00:00",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "data": {"source": "npm", "seed": 0, "digits": {"train": 8000, "validation": 1000, "test": 1000}},
        "validation": {"digits": 1000, "accuracy": 0.98, "loss": 0.07, "image_bytes_agreement": 1.0},
        "gate": {"min_accuracy": 0.97, "max_regression": 0.005, "forced": False, "compared_with_version": 3},
        "training": training,
    }


@pytest.fixture
def page_app(tmp_path, held_out):
    base = tmp_path / "models"
    publish(base, 3, card(history=False))  # an older export: card, no evaluation, no curves
    publish(base, 4, card(), EVALUATION)
    state_file = tmp_path / "rollout.json"
    write_state(state_file, stable=3, canary=4, canary_percent=50)
    fake = LabelledFakeClient({"stable": 3, "canary": 4})
    # A sampler that never wakes on its own: the test takes the samples.
    settings = Settings(
        rollout_file=str(state_file), rollout_poll_seconds=0.05, model_base_path=str(base), live_sample_seconds=3600
    )
    app = create_app({"MNIST_SETTINGS": settings, "MNIST_CLIENT": fake, "MNIST_DIGITS": held_out, "TESTING": True})
    return app, fake


def test_versions_show_stable_and_canary_side_by_side_with_what_each_lacks_in_words(page_app):
    app, _ = page_app
    body = app.test_client().get("/api/v1/model/versions").get_json()
    stable, canary = body["versions"]
    assert (stable["version"], stable["role"], canary["version"], canary["role"]) == (3, "stable", 4, "canary")
    assert stable["card"]["git_commit"].startswith("0123456789ab")
    assert stable["card"]["training_parameters"]["learning_rate"] == 0.003
    assert stable["card"]["data"]["digits"]["test"] == 1000
    assert stable["card"]["gate"]["validation_accuracy"] == 0.98
    assert stable["evaluation"] is None and stable["training"] is None
    assert any("held-out evaluation: version 3 was exported before" in line for line in stable["missing"])
    assert any("training curves" in line for line in stable["missing"])
    assert canary["evaluation"] == EVALUATION and canary["missing"] == []
    assert canary["training"]["exported_epoch"] == 3 and len(canary["training"]["epochs"]) == 3


def test_a_version_without_a_card_and_an_app_without_a_base_path_say_so(tmp_path, held_out, page_app):
    app, _ = page_app
    base = app.extensions[KEY].cards.base_path
    import pathlib

    publish(pathlib.Path(base), 5, None)
    one = app.test_client().get("/api/v1/model/versions/5").get_json()
    assert one["card"] is None and "model card: version 5 has no readable" in one["missing"][0]
    assert app.test_client().get("/api/v1/model/versions/9").status_code == 404

    bare = create_app({"MNIST_SETTINGS": Settings(), "MNIST_CLIENT": LabelledFakeClient({}), "MNIST_DIGITS": held_out})
    body = bare.test_client().get("/api/v1/model/versions").get_json()
    assert "without MODEL_BASE_PATH" in body["note"]
    assert body["versions"][0]["role"] == "latest" and "MODEL_BASE_PATH" in body["versions"][0]["missing"][0]


def test_the_page_is_a_shell_under_the_same_strict_policy_and_linked_from_the_header(page_app):
    app, fake = page_app
    client = app.test_client()
    page = client.get("/model")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    html = page.get_data(as_text=True)
    assert '<script src="/static/model.js"' in html and "<script>" not in html and "style=" not in html
    assert 'href="/model"' in client.get("/").get_data(as_text=True)
    assert fake.asked.count("stable") + fake.asked.count("canary") == 1  # only the start page predicted


def test_live_figures_per_version_and_the_guards_verdict(page_app):
    app, fake = page_app
    client = app.test_client()
    live = app.extensions[KEY].live
    live.ensure_started()  # the first sample
    for _ in range(40):
        assert client.post("/api/v1/predict", json={"pixels": PIXELS}).status_code == 200
    live.sample()
    body = client.get("/api/v1/model/live").get_json()
    series = {v["version"]: v for v in body["versions"]}
    asked = {"stable": fake.asked.count("stable"), "canary": fake.asked.count("canary")}
    assert series[3]["role"] == "stable" and series[3]["series"][-1]["requests"] == asked["stable"]
    assert series[4]["series"][-1]["requests"] == asked["canary"]
    assert series[4]["series"][-1]["error_rate"] == 0 and series[4]["series"][-1]["mean_confidence"] == 0.82
    assert series[4]["series"][-1]["rps"] > 0 and series[4]["series"][-1]["p95_ms"] is not None

    guard = body["guard"]
    assert guard["applies"] and guard["stable_version"] == 3 and guard["canary_version"] == 4
    assert guard["canary"]["requests"] == asked["canary"] and guard["stable"]["requests"] == asked["stable"]
    expected = judge(
        VersionFigures(asked["stable"], 0, None, None, None),
        VersionFigures(asked["canary"], 0, None, None, None),
        PromotePolicy(),
    )
    assert guard["allowed"] == expected.allowed
    assert guard["comparisons"][0]["figure"] == "canary requests"

    fake.failing.add("canary")  # the canary starts failing: its error rate shows, the guard refuses
    for _ in range(60):
        client.post("/api/v1/predict", json={"pixels": PIXELS})
    live.sample()
    body = client.get("/api/v1/model/live").get_json()
    canary = next(v for v in body["versions"] if v["version"] == 4)
    assert canary["series"][-1]["error_rate"] == 1.0
    assert body["guard"]["allowed"] is False
    assert any(c["figure"] == "error rate" and not c["passed"] for c in body["guard"]["comparisons"])


def test_a_step_between_two_samples_and_histogram_quantiles():
    buckets = {0.01: 0.0, 0.025: 50.0, 0.05: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.025)
    assert quantile(0.95, buckets) == pytest.approx(0.025 + 0.025 * 45 / 50)
    assert quantile(0.5, {float("inf"): 0.0}) is None
    before = Totals(10, 1, {0.01: 5.0, 0.025: 10.0, float("inf"): 10.0}, 9.0, 9)
    after = Totals(30, 1, {0.01: 5.0, 0.025: 30.0, float("inf"): 30.0}, 27.0, 29)
    step = point(before, after, 2.0)
    assert step["requests"] == 20 and step["rps"] == 10.0 and step["error_rate"] == 0
    assert 10 < step["p50_ms"] <= 25 and step["mean_confidence"] == pytest.approx(0.9)
    assert np.isclose(point(None, after, 1.0)["rps"], 30.0)
