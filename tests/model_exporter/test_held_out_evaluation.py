"""assets.extra/evaluation.json: the version on the held-out test split, computed once at export,
and an export whose data has no test split still publishes, saying why it has no evaluation."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from mnist_common.dataset import load_split
from mnist_exporter.held_out import confusion_matrix, per_class, summarise, wilson_interval
from mnist_exporter.validation import predict_classes
from tests.model_exporter.exporter_helpers import export_args


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics
        # in Medicine 17:857-872, Table I, method 3 (Wilson score, no continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_the_published_examples(successes, trials, low, high):
    found = wilson_interval(successes, trials)
    assert found == pytest.approx((low, high), abs=6e-5)


def test_confusion_matrix_and_per_digit_precision_and_recall():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(labels, predicted, classes=3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    rows = per_class(matrix)
    assert rows[0] == {"digit": 0, "support": 3, "predicted": 2, "precision": 1.0, "recall": round(2 / 3, 6)}
    assert rows[1]["precision"] == 0.5 and rows[1]["recall"] == 0.5
    assert rows[2]["precision"] == 0.5 and rows[2]["recall"] == 1.0


def test_mistakes_come_most_confident_first_and_are_all_counted():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (80, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 80)
    probabilities = rng.dirichlet(np.ones(10), 80)
    evaluation = summarise(images, labels, probabilities, dataset_sha256="x", source="synthetic")
    wrong = int((probabilities.argmax(axis=1) != labels).sum())
    assert evaluation["mistakes_total"] == wrong and len(evaluation["mistakes"]) == min(wrong, 60)
    confidences = [m["confidence"] for m in evaluation["mistakes"]]
    assert confidences == sorted(confidences, reverse=True)
    assert all(m["prediction"] != m["label"] for m in evaluation["mistakes"])
    assert sum(map(sum, evaluation["confusion_matrix"])) == 80


def test_the_published_version_carries_its_test_split_evaluation(published_base, loaded_version, data_dir):
    with open(os.path.join(published_base, "1", "assets.extra", "evaluation.json")) as handle:
        evaluation = json.load(handle)
    test = load_split(data_dir, "test")
    probabilities, classes = predict_classes(loaded_version, test.as_float())
    labels = test.labels.astype(np.int64)

    assert evaluation["split"] == "test" and evaluation["digits"] == len(test)
    assert evaluation["correct"] == int((classes == labels).sum())
    assert sum(map(sum, evaluation["confusion_matrix"])) == len(test)
    assert evaluation["confusion_matrix"] == confusion_matrix(labels, classes).tolist()
    low, high = wilson_interval(evaluation["correct"], len(test))
    assert evaluation["interval"]["method"] == "wilson" and evaluation["interval"]["level"] == 0.95
    assert evaluation["interval"]["low"] < evaluation["accuracy"] < evaluation["interval"]["high"]
    assert (evaluation["interval"]["low"], evaluation["interval"]["high"]) == pytest.approx((low, high), abs=1e-6)
    for mistake in evaluation["mistakes"]:
        assert labels[mistake["index"]] == mistake["label"] != classes[mistake["index"]] == mistake["prediction"]
        assert mistake["confidence"] == pytest.approx(float(probabilities[mistake["index"]].max()), abs=1e-5)
        assert mistake["image"].startswith("data:image/png;base64,")


def test_an_export_without_a_test_split_publishes_and_says_why(trained_dir, data_dir, tmp_path):
    from mnist_exporter.cli import main

    no_test = tmp_path / "data"
    shutil.copytree(data_dir, no_test)
    for name in os.listdir(no_test):
        if name.startswith("test-"):
            os.remove(no_test / name)
    base = tmp_path / "models"
    assert main(export_args(trained_dir, no_test, base)) == 0
    assets = base / "1" / "assets.extra"
    assert not (assets / "evaluation.json").exists()
    card = json.loads((assets / "model_card.json").read_text())
    assert "no usable test split" in card["evaluation_missing"]
    assert card["data"]["digits"]["test"] > 0  # the manifest still lists it
