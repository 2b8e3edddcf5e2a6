"""`make pipeline-local` end to end on the images `make images` builds: kfp.local's DockerRunner runs
every step in its container, the version lands in MODEL_BASE_PATH and the rollout files, and
`make serve` then loads it and predicts a real held-out digit. A refused gate, an image that is not
built and a bad parameter each end the run with one line naming the step and the reason.

The images are built first (`make images`, as .ci/run does before `make test`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pytest
import requests

from mnist_common.dataset import load_split
from mnist_run.ports import free_ports
from tests.support.make import VENV, make
from tests.support.paths import DATA_DIR
from tests.support.waiting import wait_for

# Each step is a container start and a TensorFlow import; a whole run with 2 epochs takes 2-4
# minutes on 2 cores, so these tests get more than pytest.ini's 300 s each.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
# A quick but real training: 2 epochs reach about 97 % (make quick-model's recipe and gate).
QUICK = ("EPOCHS=2", "MIN_ACCURACY=0.95")


@pytest.fixture(scope="module")
def built_images():
    """make images, as .ci/run does before make test (PYTHON_IMAGE from the environment where no
    registry answers): Docker's layer cache makes it quick when the images are built already."""
    done = make("images", "IMAGE_NAMES=mnist-trainer mnist-model-exporter", timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def local_settings(root) -> list[str]:
    return [
        f"MODEL_BASE_PATH={root}/models/mnist",
        f"ROLLOUT_FILE={root}/state/rollout.json",
        f"MODEL_CONFIG_FILE={root}/state/models.config",
        f"PIPELINE_LOCAL_ROOT={root}/kfp",
        f"PIPELINE_PACKAGE={root}/mnist.yaml",
        f"DATA_DIR={DATA_DIR}",
    ]


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one line pipeline-local ends a failed run with (make's own line follows it)."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("pipeline-local: error: ")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def pipeline_local(root, *settings: str) -> subprocess.CompletedProcess:
    return make("pipeline-local", *local_settings(root), *settings, timeout=1500)


@pytest.fixture(scope="module")
def published(built_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline-local")
    done = pipeline_local(root, *QUICK)
    return root, done


def test_the_local_run_publishes_a_version_and_hands_it_to_the_rollout(published):
    root, done = published
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert (root / "models" / "mnist" / "1" / "saved_model.pb").exists()
    state = json.loads((root / "state" / "rollout.json").read_text())
    assert state["stable"] == 1 and state["canary"] is None  # the first version ever is stable
    assert f'base_path: "{root}/models/mnist"' in (root / "state" / "models.config").read_text()
    assert "pipeline-local: version 1 published" in done.stdout


def test_the_evaluation_is_kfps_metrics_and_confusion_matrix(published):
    root, done = published
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((root / "kfp").iterdir())
    evaluate = runs[-1] / "evaluate"
    figures = json.loads((evaluate / "metrics").read_text())
    test = load_split(os.fspath(DATA_DIR), "test")
    assert figures["test_digits"] == len(test) and figures["test_accuracy"] >= 0.9
    matrix = json.loads((evaluate / "confusion_matrix").read_text())
    rows = [row["row"] for row in matrix["rows"]]
    assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == [str(d) for d in range(10)]
    assert sum(map(sum, rows)) == len(test)
    assert sum(rows[d][d] for d in range(10)) / len(test) == pytest.approx(figures["test_accuracy"], abs=1e-6)
    assert "# Model card: mnist version 1" in (evaluate / "model_card").read_text()


def test_make_serve_loads_the_version_and_predicts_a_held_out_digit(published):
    root, done = published
    assert done.returncode == 0, done.stderr[-2000:]
    grpc_port, rest_port, ui_port = free_ports(3)
    server = subprocess.Popen(
        ["make", "--no-print-directory", f"VENV={VENV}", "serve", *local_settings(root)]
        + [f"GRPC_PORT={grpc_port}", f"REST_PORT={rest_port}", f"UI_PORT={ui_port}", "POLL_SECONDS=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{rest_port}/v1/models/mnist"
        wait_for(
            lambda: "AVAILABLE" in requests.get(url, timeout=2).text,
            timeout=120,
            what="the model server loading version 1",
            process=server,
            ignore=(requests.ConnectionError,),
        )
        test = load_split(os.fspath(DATA_DIR), "test")
        digits, labels = test.as_float()[:10], [int(label) for label in test.labels[:10]]
        body = {"instances": [np.round(digit, 4).tolist() for digit in digits]}
        answer = requests.post(f"{url}/labels/stable:predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        predicted = [prediction["classes"] for prediction in answer.json()["predictions"]]
        # A 2-epoch model is right about 97 % of the time: 9 of the first 10 held-out digits at least.
        assert sum(p == label for p, label in zip(predicted, labels, strict=True)) >= 9, (predicted, labels)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_refused_gate_stops_the_run_naming_the_export_step_and_the_check(built_images, tmp_path):
    done = pipeline_local(tmp_path, "EPOCHS=1", "MIN_ACCURACY=0.999")
    assert done.returncode != 0, done.stdout[-3000:]  # make's own status for a failed recipe: 2
    message = error_line(done)
    assert message.startswith("pipeline-local: error: step export failed (exit 3, refused by the validation gate")
    assert "failed check min-accuracy" in message and "nothing after it ran" in message
    assert not (tmp_path / "models" / "mnist" / "1").exists() and not (tmp_path / "state" / "rollout.json").exists()
    assert not any((tmp_path / "kfp").glob("*/evaluate"))


def test_a_bad_parameter_stops_the_run_naming_the_train_step_and_the_setting(built_images, tmp_path):
    done = pipeline_local(tmp_path, "EPOCHS=0")
    assert done.returncode != 0, done.stdout[-3000:]  # make's own status for a failed recipe: 2
    message = error_line(done)
    assert message.startswith("pipeline-local: error: step train failed (exit 2, bad input")
    assert "--epochs: '0' must be at least 1" in message


def test_a_parameter_of_the_wrong_type_is_refused_before_anything_runs(built_images, tmp_path):
    done = pipeline_local(tmp_path, "EPOCHS=two")
    assert done.returncode != 0
    assert "pipeline-local: error: parameter epochs='two' is not a number_integer" in done.stderr
    assert not (tmp_path / "kfp").exists()


def test_an_image_that_is_not_built_stops_the_run_naming_its_steps(tmp_path):
    done = pipeline_local(tmp_path, "IMAGE_TAG=never-built-here")
    assert done.returncode != 0
    message = error_line(done)
    assert "step train: image mnist.local/mnist-trainer:never-built-here" in message
    assert "step export: image mnist.local/mnist-model-exporter:never-built-here" in message
    assert "Run 'make images'" in message
