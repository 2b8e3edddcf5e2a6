"""The finished outputs in the model dir: model.keras, then metrics.json (written last).

The exporter treats model.keras + metrics.json as a finished run, so both appear atomically and
metrics.json only once model.keras is in place. Locally each is written to a temporary file in
the same folder and renamed over the old one. On gs:// an object becomes visible only when its
upload completes, so a single upload is already all-or-nothing; the model is first saved to a
local temporary folder and then uploaded as one object.
"""

from __future__ import annotations

import json
import os
import tempfile

from mnist_common import storage

# The names are the pipeline's contract with the exporter and make run.
from mnist_common.pipeline import CHECKPOINTS_DIR, LOGS_DIR, TRAINED_MODEL_FILE, TRAINING_METRICS_FILE

MODEL_FILE = TRAINED_MODEL_FILE
METRICS_FILE = TRAINING_METRICS_FILE
__all__ = [
    "CHECKPOINTS_DIR",
    "LOGS_DIR",
    "MODEL_FILE",
    "METRICS_FILE",
    "save_model",
    "save_model_discarded",
    "write_metrics",
    "read_metrics",
]


def save_model(model, model_dir: str) -> str:
    """Save the Keras model to <model_dir>/model.keras atomically; returns its path."""
    path = storage.join(model_dir, MODEL_FILE)
    with tempfile.TemporaryDirectory(prefix="mnist-train-model-") as scratch:
        local_copy = os.path.join(scratch, MODEL_FILE)
        model.save(local_copy)
        with open(local_copy, "rb") as handle:
            storage.write_bytes_atomic(path, handle.read())
    return path


def save_model_discarded(model) -> None:
    """Save the model where nobody reads it: a non-chief worker's part in a distributed save."""
    with tempfile.TemporaryDirectory(prefix="mnist-train-worker-model-") as scratch:
        model.save(os.path.join(scratch, MODEL_FILE))


def write_metrics(metrics: dict, model_dir: str) -> str:
    path = storage.join(model_dir, METRICS_FILE)
    storage.write_bytes_atomic(path, (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_metrics(model_dir: str) -> dict:
    return json.loads(storage.read_bytes(storage.join(model_dir, METRICS_FILE)))
