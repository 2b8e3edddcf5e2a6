"""A tiny real training run (one epoch, a few hundred digits) and everything it must write."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.trainer.trainer_helpers import epoch_lines, latest_checkpoint_number, run_trainer

pytestmark = pytest.mark.slow

TINY = ("--limit", "256", "--epochs", "1", "--batch-size", "64", "--seed", "3")
METRIC_KEYS = {
    "validation_accuracy",
    "validation_loss",
    "epochs",
    "wall_seconds",
    "training_seconds",
    "dataset_sha256",
    "seed",
    "batch_size",
    "learning_rate",
    "train_examples",
    "limit",
    "architecture",
    "inputs",
    "resumed_from_epoch",
    "num_workers",
}


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("tiny") / "model"
    result = run_trainer("--data-dir", data_dir, "--model-dir", str(model_dir), *TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    return model_dir, result


def test_progress_is_printed_per_epoch(tiny_run):
    _, result = tiny_run
    lines = epoch_lines(result.stdout)
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1: loss=")
    assert "val_accuracy=" in lines[0]
    assert "done: validation accuracy" in result.stdout


def test_every_artifact_is_written_and_nothing_half_written(tiny_run):
    model_dir, _ = tiny_run
    assert (model_dir / "model.keras").stat().st_size > 0
    assert latest_checkpoint_number(model_dir) == 1
    assert (model_dir / "checkpoints" / "ckpt-1.index").exists()
    for split in ("train", "validation"):
        assert list((model_dir / "logs" / split).glob("events.out.tfevents.*")), split
    leftovers = [path.name for path in model_dir.rglob("*") if ".tmp" in path.name or "temp" in path.name]
    assert leftovers == []


def test_metrics_record_results_and_every_input(tiny_run, data_dir):
    model_dir, _ = tiny_run
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    manifest = json.loads((open(f"{data_dir}/manifest.json")).read())
    assert metrics["dataset_sha256"] == manifest["dataset_sha256"]
    assert (metrics["epochs"], metrics["batch_size"], metrics["seed"], metrics["train_examples"]) == (1, 64, 3, 256)
    assert 0.0 <= metrics["validation_accuracy"] <= 1.0 and metrics["validation_loss"] > 0
    assert metrics["resumed_from_epoch"] == 0 and metrics["num_workers"] == 1
    assert metrics["inputs"]["dataset_sha256"] == metrics["dataset_sha256"]
    assert metrics["inputs"]["learning_rate"] == metrics["learning_rate"]
    # The curves the /model page draws: one entry per epoch, the exported one marked.
    (only,) = metrics["history"]
    assert only["epoch"] == metrics["exported_epoch"] == 1
    assert only["val_accuracy"] == pytest.approx(metrics["validation_accuracy"], abs=1e-6)
    assert only["loss"] > 0 and 0 <= only["accuracy"] <= 1


def test_saved_model_keeps_the_contract(tiny_run, keras, data_dir):
    from mnist_common.dataset import load_split

    model_dir, _ = tiny_run
    model = keras.models.load_model(model_dir / "model.keras")
    assert tuple(model.input_shape) == (None, 28, 28)
    assert model.inputs[0].name == "images"
    digits = load_split(data_dir, "validation", limit=20).as_float()
    probabilities = np.asarray(model.predict(digits, verbose=0))
    assert probabilities.shape == (20, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The saved weights are the trained ones: validation accuracy recomputed from the file
    # agrees with what metrics.json reports for it.
    validation = load_split(data_dir, "validation")
    predicted = np.asarray(model.predict(validation.as_float(), verbose=0)).argmax(axis=1)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert abs((predicted == validation.labels).mean() - metrics["validation_accuracy"]) < 1e-6


def test_rerun_with_other_inputs_starts_over(tiny_run, data_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_run[0], model_dir)
    result = run_trainer("--data-dir", data_dir, "--model-dir", str(model_dir), *TINY[:-2], "--seed", "4")
    assert result.returncode == 0, result.stderr
    assert "were made with other seed; starting over" in result.stdout
    assert len(epoch_lines(result.stdout)) == 1
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["seed"] == 4 and metrics["resumed_from_epoch"] == 0


def test_rerun_with_the_same_inputs_changes_nothing(tiny_run, data_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_run[0], model_dir)
    before = {path: path.stat().st_mtime_ns for path in model_dir.rglob("*")}
    result = run_trainer("--data-dir", data_dir, "--model-dir", str(model_dir), *TINY)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout and epoch_lines(result.stdout) == []
    assert {path: path.stat().st_mtime_ns for path in model_dir.rglob("*")} == before
