"""make run's decision: reuse the published model, only export, or train (a pure function)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mnist_common.pipeline import EXPORT, REUSE, TRAIN, TrainingInputs, decide
from mnist_trainer.model import ARCHITECTURE

DATA = "a" * 64
PARAMS = {"epochs": 3, "batch_size": 128, "learning_rate": 0.001, "seed": 42, "limit": None}
WANTED = TrainingInputs(DATA, PARAMS)


def metrics(dataset=DATA, **overrides):
    return {
        "dataset_sha256": dataset,
        **{k: v for k, v in PARAMS.items() if v is not None},
        "accuracy": 0.98,
        **overrides,
    }


def card(dataset=DATA, **overrides):
    return {"dataset_sha256": dataset, "training": metrics(dataset, **overrides)}


def test_same_inputs_reuse_the_newest_version():
    plan = decide(WANTED, (4, card()), metrics())
    assert (plan.action, plan.version) == (REUSE, 4)


def test_an_int_and_an_equal_float_are_the_same_input():
    wanted = TrainingInputs(DATA, {**PARAMS, "learning_rate": 1e-3, "epochs": 3.0})
    assert decide(wanted, (1, card()), None).action == REUSE


def test_the_trainers_inputs_record_wins_over_top_level_figures():
    # mnist-train writes its inputs twice: at the top and under "inputs"; "inputs" is the record.
    training = {**metrics(epochs=99), "inputs": {"dataset_sha256": DATA, **PARAMS}}
    assert decide(WANTED, (2, {"dataset_sha256": DATA, "training": training}), None).action == REUSE
    training["inputs"]["seed"] = 7
    assert "seed 7 -> 42" in decide(WANTED, (2, {"dataset_sha256": DATA, "training": training}), None).reason


@pytest.mark.parametrize(
    "changed_card, words",
    [
        (card(dataset="b" * 64), "the data changed (dataset sha256 bbbbbbbbbbbb -> aaaaaaaaaaaa)"),
        (card(epochs=1), "epochs 1 -> 3"),
        (card(learning_rate=0.01), "learning_rate 0.01 -> 0.001"),
        (card(limit=300), "limit 300 -> None"),
    ],
)
def test_changed_inputs_train_and_say_why(changed_card, words):
    plan = decide(WANTED, (7, changed_card), None)
    assert plan.action == TRAIN
    assert "version 7 differs" in plan.reason and words in plan.reason


def test_finished_but_unpublished_training_is_only_exported():
    plan = decide(WANTED, (3, card(epochs=1)), metrics())
    assert plan.action == EXPORT
    assert "epochs 1 -> 3" in plan.reason


def test_nothing_published_nothing_trained():
    plan = decide(WANTED, None, None)
    assert plan.action == TRAIN and "no version is published" in plan.reason


def test_unreadable_card_is_not_trusted():
    plan = decide(WANTED, (5, None), metrics(seed=1))
    assert plan.action == TRAIN
    assert "version 5 has no readable model card" in plan.reason and "seed 1 -> 42" in plan.reason


def test_plan_cli_reads_manifest_card_and_metrics(tmp_path):
    data_dir, train_dir, base = tmp_path / "data", tmp_path / "training", tmp_path / "models"
    data_dir.mkdir()
    (data_dir / "manifest.json").write_text(json.dumps({"dataset_sha256": DATA}))
    version = base / "3"
    (version / "assets.extra").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"not read")
    card_file = version / "assets.extra" / "model_card.json"
    card_file.write_text(json.dumps(card(architecture=ARCHITECTURE)))

    def plan(*params):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mnist_run.cli",
                "plan",
                "--data-dir",
                str(data_dir),
                "--train-dir",
                str(train_dir),
                "--model-base-path",
                str(base),
                *params,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "EPOCHS": "", "BATCH_SIZE": "", "LEARNING_RATE": "", "SEED": "", "TRAIN_LIMIT": ""},
        )
        return result.returncode, result.stdout.strip(), result.stderr

    args = ["--epochs", "3", "--batch-size", "128", "--learning-rate", "0.001", "--seed", "42"]
    assert plan(*args)[:2] == (0, REUSE)
    code, action, why = plan(*args, "--limit", "500")
    assert (code, action) == (0, TRAIN) and "limit None -> 500" in why
    # Trained as another network (an older checkout's): retrained once, not served on as if new.
    card_file.write_text(json.dumps(card(architecture="mnist_cnn_v1")))
    code, action, why = plan(*args)
    assert (code, action) == (0, TRAIN) and f"architecture 'mnist_cnn_v1' -> '{ARCHITECTURE}'" in why

    (version / "saved_model.pb").unlink()  # not a published version any more
    train_dir.mkdir()
    (train_dir / "metrics.json").write_text(json.dumps(metrics(architecture=ARCHITECTURE)))
    assert plan(*args)[:2] == (0, EXPORT)

    (data_dir / "manifest.json").unlink()
    code, _, why = plan(*args)
    assert code == 2 and "manifest" in why
