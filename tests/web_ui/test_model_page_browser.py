"""The /model page in headless Chromium against a stack as `make run` builds it, with a canary.

Two versions come from the pipeline's own commands (mnist-train, mnist-export): v1, made to look
like an export from before held-out evaluations (no evaluation.json, no training curves, no data
summary in its card), is stable; v2 is the canary at 50 %. The stand-in model server reads the
rollout's models.config as `make serve` does, the web UI runs under gunicorn with two workers as
`make ui` does. The checks are a person's: the figures on the page are those of the held-out
digits as the model server answers them for v2, the confusion matrix holds the whole test split,
the shown mistakes are mistakes, the live charts move while predicts flow. Screenshots at laptop
and phone width go to artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

from mnist_common.dataset import load_split
from mnist_exporter.held_out import wilson_interval
from mnist_run.ports import free_port
from tests.e2e.e2e_helpers import run, venv_command
from tests.support.paths import REPO_ROOT
from tests.tf_serving.serving_harness import start_standin, wait_available

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
EPOCHS = 2
# The model server's batching takes at most this many rows per request (batching_parameters.txt).
SERVER_BATCH = 64
# The page keeps each figure with its unit: a no-break space before "%".
PERCENT = "\u00a0%"


def train_and_export(data_dir: str, train_dir, base, seed: int) -> None:
    run(
        [
            venv_command("mnist-train"),
            *("--data-dir", data_dir, "--model-dir", os.fspath(train_dir)),
            *("--epochs", str(EPOCHS), "--batch-size", "32", "--limit", "1024", "--seed", str(seed)),
        ],
        timeout=600,
    )
    # A tiny model is far below the real gate: what is tested is what the page shows of it.
    run(
        [
            venv_command("mnist-export"),
            *("--train-dir", os.fspath(train_dir), "--data-dir", data_dir, "--model-base-path", os.fspath(base)),
            *("--min-accuracy", "0", "--max-regression", "1"),
        ],
        timeout=600,
    )


def as_an_older_export(version_dir) -> None:
    """What an export made before this page holds: a card without data summary or curves, and no
    held-out evaluation."""
    assets = version_dir / "assets.extra"
    (assets / "evaluation.json").unlink()
    card = json.loads((assets / "model_card.json").read_text())
    card.pop("data", None)
    for key in ("history", "exported_epoch"):
        card["training"].pop(key, None)
    (assets / "model_card.json").write_text(json.dumps(card, indent=2))


class Stack:
    def __init__(self, root, data_dir: str):
        self.root = root
        self.data_dir = data_dir
        self.base = root / "models" / "mnist"
        self.state_file = root / "rollout.json"
        self.config_file = root / "models.config"
        self.ui_url = ""
        self.rest_url = ""

    def rollout(self, *args: str) -> str:
        command = [
            sys.executable,
            "-m",
            "mnist_rollout",
            *args,
            *("--state-file", os.fspath(self.state_file), "--model-config-file", os.fspath(self.config_file)),
            *("--model-base-path", os.fspath(self.base), "--rest-url", self.rest_url or "http://127.0.0.1:9"),
            *("--metrics-url", f"{self.ui_url or 'http://127.0.0.1:9'}/metrics", "--quiet-seconds", "1"),
            *("--timeout", "120"),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("model-page")
    built = Stack(root, data_dir)
    train_and_export(data_dir, root / "train-v1", built.base, seed=3)
    as_an_older_export(built.base / "1")
    built.rollout("init")  # v1, the only version, becomes stable
    train_and_export(data_dir, root / "train-v2", built.base, seed=4)

    standin = start_standin(
        built.base,
        root / "standin.log",
        built.config_file,
        extra_flags=("--model_config_file_poll_wait_seconds=0.5",),
    )
    built.rest_url = standin.rest_url
    port = free_port()
    env = dict(
        os.environ,
        UI_PORT=str(port),
        SERVING_GRPC_ADDRESS=standin.grpc_target,
        SERVING_REST_URL=standin.rest_url,
        DATA_DIR=data_dir,
        MODEL_BASE_PATH=os.fspath(built.base),
        ROLLOUT_FILE=os.fspath(built.state_file),
        ROLLOUT_POLL_SECONDS="0.5",
        ROLLOUT_POLICY_FILE=os.fspath(REPO_ROOT / "loadtest" / "rollout.yaml"),
        LIVE_SAMPLE_SECONDS="1",
        WEB_WORKERS="2",
        WEB_THREADS="4",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(root / "webui.log", "wb")  # noqa: SIM115 - closed with the process
    web = subprocess.Popen(
        [venv_command("gunicorn"), "-c", "python:mnist_webui.gunicorn_conf", "mnist_webui:create_app()"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    built.ui_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{built.ui_url}/readyz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert web.poll() is None, (root / "webui.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the web UI did not become ready"
            time.sleep(0.2)
        assert "canary v2 at 50 %" in built.rollout("canary", "--model-version", "2", "--percent", "50")
        wait_available(standin, 2)
        yield built
    finally:
        if web.poll() is None:
            os.killpg(web.pid, 15)
            web.wait(timeout=30)
        log.close()
        standin.stop()


class Load:
    """Predicts of held-out digits posted to the web UI, about 20 a second, until the module ends."""

    def __init__(self, url: str, digits: np.ndarray):
        self.url = url
        self.digits = digits
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        index = 0
        while not self.stop.is_set():
            pixels = (self.digits[index % len(self.digits)] / 255.0).round(4).tolist()
            index += 1
            try:
                self.statuses.append(
                    session.post(f"{self.url}/api/v1/predict", json={"pixels": pixels}, timeout=10).status_code
                )
            except requests.RequestException:
                self.statuses.append(0)
            self.stop.wait(0.05)


@pytest.fixture(scope="module")
def load(stack, data_dir):
    flow = Load(stack.ui_url, load_split(data_dir, "test").images[:50])
    flow.thread.start()
    yield flow
    flow.stop.set()
    flow.thread.join(timeout=15)


def open_page(browser, stack, width=1280, height=900, **options):
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors, urls = [], []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: urls.append(request.url))
    page.goto(stack.ui_url + "/model")
    expect(page.locator("#versions")).to_have_attribute("data-loaded", "true")
    return context, page, errors, urls


def predictions_counted(stack) -> float:
    text = requests.get(f"{stack.ui_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("webui_predictions_total{")
    )


def served_by_version(stack, version: int, images_uint8: np.ndarray) -> np.ndarray:
    """Probabilities of `version` for the digits, asked of the model server by version number."""
    images = images_uint8.astype(np.float32) / 255.0  # the model's input, as the exporter feeds it
    found = []
    for start in range(0, len(images), SERVER_BATCH):
        answer = requests.post(
            f"{stack.rest_url}/v1/models/mnist/versions/{version}:predict",
            json={"signature_name": "serving_default", "instances": images[start : start + SERVER_BATCH].tolist()},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        found.extend(p["probabilities"] for p in answer.json()["predictions"])
    return np.array(found)


# ---- tests, in the order they run: the first ones before any predict flows ----------------


def test_loading_the_page_asks_the_model_server_for_no_prediction(browser, stack):
    before = predictions_counted(stack)
    context, page, errors, urls = open_page(browser, stack)
    try:
        expect(page.locator("#guard .guard-summary")).to_contain_text("Promote guard")
        for _ in range(2):  # two live refreshes, each seen as a new "updated" time
            expect(page.locator("#live-status")).not_to_have_text(page.locator("#live-status").inner_text())
        assert not [url for url in urls if "/predict" in url]
        assert [url for url in urls if not (url.startswith(stack.ui_url) or url.startswith("data:"))] == []
        assert errors == []
    finally:
        context.close()
    assert predictions_counted(stack) == before


def test_stable_and_canary_cards_side_by_side_and_the_older_one_says_what_it_lacks(browser, stack):
    context, page, errors, _ = open_page(browser, stack)
    try:
        stable = page.locator('article.version[data-version="1"]')
        canary = page.locator('article.version[data-version="2"]')
        expect(stable.locator(".role")).to_have_text("stable")
        expect(canary.locator(".role")).to_have_text("canary")
        left, right = stable.bounding_box(), canary.bounding_box()
        assert abs(left["y"] - right["y"]) < 2 and left["x"] + left["width"] <= right["x"]  # side by side

        missing = stable.locator(".missing").inner_text()
        assert "held-out evaluation: version 1 was exported before held-out evaluations were written" in missing
        assert "training curves" in missing
        assert stable.locator(".evaluation").count() == 0 and stable.locator(".card-part").count() == 1
        assert canary.locator(".missing").count() == 0

        card = json.loads((stack.base / "2" / "assets.extra" / "model_card.json").read_text())
        facts = canary.locator(".card-part")
        assert card["git_commit"][:12] in facts.locator('[data-fact="commit"]').inner_text()
        assert "999 test" in facts.locator('[data-fact="data"]').inner_text()
        assert (
            f"{card['validation']['accuracy'] * 100:.2f}{PERCENT}"
            in facts.locator('[data-fact="gate-accuracy"]').inner_text()
        )
        parameters = facts.locator("details.parameters")
        assert "seed 4" in parameters.locator("summary").inner_text()  # the headline, folded
        parameters.locator("summary").click()
        assert "tensorflow version" in parameters.inner_text()
        assert errors == []
    finally:
        context.close()


def test_the_figures_are_those_of_the_held_out_digits_as_v2_answers_them(browser, stack, data_dir):
    test = load_split(data_dir, "test")
    predicted = served_by_version(stack, 2, test.images).argmax(axis=1)
    labels = test.labels.astype(np.int64)
    correct = int((predicted == labels).sum())
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    low, high = wilson_interval(correct, len(labels))

    context, page, errors, _ = open_page(browser, stack)
    try:
        canary = page.locator('article.version[data-version="2"]')
        assert canary.locator(".accuracy-value").inner_text() == f"{correct / len(labels) * 100:.2f}{PERCENT}"
        assert (
            f"on {len(labels)} held-out test digits ({correct} right)" in canary.locator(".accuracy-text").inner_text()
        )
        assert canary.locator(".accuracy-interval").inner_text() == (
            f"95{PERCENT} Wilson score interval: {low * 100:.2f}{PERCENT} – {high * 100:.2f}{PERCENT}"
        )
        cells = canary.locator(".heatmap g.cell").evaluate_all(
            "cells => cells.map(c => [+c.dataset.true, +c.dataset.predicted, +c.dataset.count])"
        )
        shown = np.zeros((10, 10), dtype=int)
        for truth, guess, count in cells:
            shown[truth, guess] = count
        assert shown.sum() == len(test)  # the whole test split, each digit once
        assert (shown == matrix).all()
        rows = canary.locator(".class-bars g.class-row").evaluate_all(
            "rows => rows.map(r => [+r.dataset.digit, +r.dataset.precision, +r.dataset.recall])"
        )
        assert [row[0] for row in rows] == list(range(10))
        for digit, precision, recall in rows:
            predicted_as = matrix[:, digit].sum()  # a digit never predicted has no precision
            if predicted_as:
                assert precision == pytest.approx(matrix[digit, digit] / predicted_as, abs=1e-6)
            else:
                assert np.isnan(precision)
            assert recall == pytest.approx(matrix[digit, digit] / matrix[digit].sum(), abs=1e-6)
        assert errors == []
    finally:
        context.close()


def test_the_mistakes_shown_are_misclassified_by_v2_most_confident_first(browser, stack, data_dir):
    test = load_split(data_dir, "test")
    context, page, _, _ = open_page(browser, stack)
    try:
        shown = page.locator('article.version[data-version="2"] li.mistake').evaluate_all(
            "items => items.map(i => [+i.dataset.index, +i.dataset.label, +i.dataset.prediction,"
            " +i.dataset.confidence, i.querySelector('img').src])"
        )
    finally:
        context.close()
    assert shown, "v2 of a tiny model makes mistakes on 999 digits; the gallery must show them"
    indexes = np.array([item[0] for item in shown])
    probabilities = served_by_version(stack, 2, test.images[indexes])
    for (index, label, prediction, confidence, src), answer in zip(shown, probabilities, strict=True):
        assert label == int(test.labels[index]) != prediction == int(answer.argmax())
        assert confidence == pytest.approx(float(answer.max()), abs=1e-4)
        picture = np.array(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
        assert (picture.reshape(28, 28) == test.images[index]).all()  # the digit itself
    confidences = [item[3] for item in shown]
    assert confidences == sorted(confidences, reverse=True)


def test_training_curves_mark_the_exported_epoch(browser, stack):
    context, page, _, _ = open_page(browser, stack)
    try:
        curves = page.locator('article.version[data-version="2"] svg.curve')
        assert curves.count() == 2  # loss and accuracy
        for i in range(2):
            chart = curves.nth(i)
            assert chart.locator("path.line.train").count() == 1 and chart.locator("path.line.validation").count() == 1
            assert chart.locator("circle.dot.train").count() == EPOCHS
            assert chart.locator("line.exported").get_attribute("data-epoch") == str(EPOCHS)
            assert f"exported: epoch {EPOCHS}" in chart.locator(".exported-label").text_content()
    finally:
        context.close()


def test_live_charts_move_while_predicts_flow_and_the_guard_judges(browser, stack, load):
    context, page, errors, _ = open_page(browser, stack)
    try:
        rps = page.locator('figure.live[data-figure="rps"]')

        def both_versions_drawn():
            for _ in range(60):
                versions = set(rps.locator("path.series").evaluate_all("paths => paths.map(p => p.dataset.version)"))
                if {"1", "2"} <= versions:
                    return
                page.wait_for_timeout(500)
            pytest.fail(f"the rps chart did not draw both versions; it shows {rps.inner_text()!r}")

        both_versions_drawn()
        first = rps.locator('path.series[data-version="2"]').get_attribute("d")
        points = int(rps.get_attribute("data-points"))
        assert points >= 2  # a line, not a dot
        # A later sample redraws the canary's line elsewhere: it moved. (The point count alone
        # stops growing once the 5-minute window is full.)
        expect(rps.locator('path.series[data-version="2"]')).not_to_have_attribute("d", first)
        # The predicts flowing are what it draws: a step where both versions answered some.
        expect(rps.locator(".last")).to_have_text(re.compile(r"v1: (?!0\.0 )[0-9.]+ /s · v2: (?!0\.0 )[0-9.]+ /s"))
        for figure in ("error_rate", "latency", "mean_confidence"):
            chart = page.locator(f'figure.live[data-figure="{figure}"]')
            assert chart.locator('path.series[data-version="2"]').count() >= 1, figure

        guard = page.locator("#guard")
        expect(guard.locator('li[data-figure="canary requests"]')).to_be_visible()
        expect(guard.locator('li[data-figure="error rate"]')).to_be_visible(timeout=30_000)  # enough canary answers
        # Neither version fails a predict: the error-rate comparison passes (latency may go either
        # way on a busy machine, so the verdict itself is not asserted).
        expect(guard.locator('li[data-figure="error rate"]')).to_have_class(re.compile(r"\bpassed\b"))
        assert "error rate: canary 0.00% (0 of " in guard.inner_text()
        assert errors == []
    finally:
        context.close()
    assert set(load.statuses) == {200}


def test_screenshots_at_laptop_and_phone_width(browser, stack, load):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, options in (
        ("laptop", {"width": 1280, "height": 900}),
        ("phone", {"width": 375, "height": 812, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}),
    ):
        width, height = options.pop("width"), options.pop("height")
        context, page, errors, _ = open_page(browser, stack, width, height, **options)
        try:
            page.wait_for_timeout(3500)  # a few live samples drawn
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
            page.screenshot(path=os.fspath(SCREENSHOTS / f"model-page-{name}.png"), full_page=True)
            assert errors == []
        finally:
            context.close()
        assert (SCREENSHOTS / f"model-page-{name}.png").stat().st_size > 10_000
