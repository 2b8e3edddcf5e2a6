"""assets.extra/evaluation.json: how a published version does on the held-out test split.

Computed once, at export, on digits nothing trained on or selected with (the `test` split; the
gate judges on `validation`), and written beside the model card for people and the web UI's
/model page to look at. Nothing decides anything from it: the gate never reads it.

What it holds: accuracy with its 95 % Wilson score interval, the confusion matrix (rows: true
digit, columns: predicted), precision and recall per digit, and the misclassified digits, most
confident mistakes first, each with its picture as a PNG data URI.
"""

from __future__ import annotations

import base64
import json
import math
import os

import numpy as np

from mnist_common import pipeline

EVALUATION_FILE = pipeline.EVALUATION_FILE
EVALUATION_SCHEMA = 1
SPLIT = "test"
# The z of a two-sided 95 % interval (the normal distribution's 97.5th percentile).
Z_95 = 1.959963984540054
# Mistakes kept with their pictures: the page shows the most confident ones; all are counted.
MAX_MISTAKES_SHOWN = 60


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (Wilson 1927): unlike the normal
    approximation it stays inside [0, 1] and is sound near 100 % accuracy, where models live."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """[true, predicted] counts."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def per_class(matrix: np.ndarray) -> list[dict]:
    """Precision (of the digits predicted as d, the share that were d) and recall (of the digits
    that were d, the share found) per digit; None where nothing was predicted or present."""
    rows = []
    for digit in range(matrix.shape[0]):
        hits = int(matrix[digit, digit])
        predicted_as = int(matrix[:, digit].sum())
        present = int(matrix[digit, :].sum())
        rows.append(
            {
                "digit": digit,
                "support": present,
                "predicted": predicted_as,
                "precision": round(hits / predicted_as, 6) if predicted_as else None,
                "recall": round(hits / present, 6) if present else None,
            }
        )
    return rows


def png_data_uri(image: np.ndarray) -> str:
    from mnist_exporter.warmup import encode_png

    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def summarise(
    images_uint8: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, *, dataset_sha256: str, source: str
) -> dict:
    """The evaluation document from a version's probabilities [N, 10] on the test split."""
    labels = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    correct = int((predicted == labels).sum())
    count = int(len(labels))
    low, high = wilson_interval(correct, count)
    wrong = np.flatnonzero(predicted != labels)
    # Most confident mistakes first; the index breaks ties so the order is reproducible.
    wrong = wrong[np.lexsort((wrong, -confidence[wrong]))]
    return {
        "schema": EVALUATION_SCHEMA,
        "split": SPLIT,
        "dataset_sha256": dataset_sha256,
        "source": source,
        "digits": count,
        "correct": correct,
        "accuracy": round(correct / count, 6) if count else None,
        "interval": {"method": "wilson", "level": 0.95, "low": round(low, 6), "high": round(high, 6)},
        "confusion_matrix": confusion_matrix(labels, predicted).tolist(),
        "per_class": per_class(confusion_matrix(labels, predicted)),
        "mistakes_total": int(len(wrong)),
        "mistakes": [
            {
                "index": int(i),
                "label": int(labels[i]),
                "prediction": int(predicted[i]),
                "confidence": round(float(confidence[i]), 6),
                "image": png_data_uri(images_uint8[i]),
            }
            for i in wrong[:MAX_MISTAKES_SHOWN]
        ],
    }


def evaluate_saved_model(export_dir: str, images_uint8: np.ndarray, labels: np.ndarray, **about) -> dict:
    """Load the staged SavedModel as TF Serving would and evaluate it on the test split."""
    import tensorflow as tf

    from mnist_exporter.validation import predict_classes

    loaded = tf.saved_model.load(export_dir)
    probabilities, _ = predict_classes(loaded, images_uint8.astype(np.float32) / 255.0)
    return summarise(images_uint8, labels, probabilities, **about)


def write_evaluation(export_dir: str, evaluation: dict) -> str:
    # A plain write: export_dir is the local staging folder, published as a whole afterwards.
    folder = os.path.join(export_dir, pipeline.ASSETS_EXTRA_DIR)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, EVALUATION_FILE)
    with open(path, "w") as handle:
        handle.write(json.dumps(evaluation, sort_keys=True) + "\n")
    return path
