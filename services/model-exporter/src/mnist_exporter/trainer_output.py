"""Read a finished training run: <train-dir>/model.keras plus <train-dir>/metrics.json.

The trainer writes metrics.json last, so both files present means training finished. Anything
missing, unreadable or not matching the Keras model contract (input float32 [None, 28, 28],
output [None, 10]) is an InputError naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from mnist_common import storage
from mnist_common.dataset import sha256_bytes
from mnist_common.pipeline import TRAINED_MODEL_FILE as MODEL_FILE
from mnist_common.pipeline import TRAINING_METRICS_FILE as METRICS_FILE
from mnist_exporter.errors import InputError


@dataclass(frozen=True)
class TrainerOutput:
    """A finished run as files; load_model() deserialises the Keras model (slow: TensorFlow)."""

    metrics: dict
    model_path: str
    model_bytes: bytes
    model_sha256: str

    def load_model(self):
        model = _load_keras_model(self.model_bytes, self.model_path)
        _check_model_contract(model, self.model_path)
        return model


def _read(path: str, what: str) -> bytes:
    try:
        return storage.read_bytes(path)
    except FileNotFoundError:
        raise InputError(
            f"{path}: {what} is missing; is training finished? (run 'make train' or point "
            "--train-dir / TRAIN_DIR at a finished run)"
        ) from None
    except OSError as error:
        raise InputError(f"{path}: cannot read {what} ({error})") from None


def read_metrics(train_dir: str) -> dict:
    path = storage.join(train_dir, METRICS_FILE)
    raw = _read(path, "the trainer's metrics file")
    try:
        metrics = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: corrupt, not valid JSON ({error})") from None
    if not isinstance(metrics, dict):
        raise InputError(f"{path}: corrupt, expected a JSON object, got {type(metrics).__name__}")
    return metrics


def _load_keras_model(model_bytes: bytes, path: str):
    import keras

    # Keras reads a local file; going through bytes makes gs:// and local paths alike.
    with tempfile.TemporaryDirectory(prefix="mnist-export-model-") as folder:
        local_copy = os.path.join(folder, MODEL_FILE)
        with open(local_copy, "wb") as handle:
            handle.write(model_bytes)
        try:
            return keras.models.load_model(local_copy, compile=False)
        except Exception as error:  # Keras raises many types for a broken archive
            raise InputError(f"{path}: corrupt, not a loadable Keras model ({error})") from None


def _check_model_contract(model, path: str) -> None:
    input_shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    output_shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    if input_shape != (None, 28, 28):
        raise InputError(f"{path}: model input shape is {model.input_shape}, expected (None, 28, 28)")
    if output_shape != (None, 10):
        raise InputError(f"{path}: model output shape is {model.output_shape}, expected (None, 10)")


def read_trainer_output(train_dir: str) -> TrainerOutput:
    """Read metrics first (it marks a finished run), then the model file's bytes."""
    if not storage.is_remote(train_dir) and not os.path.isdir(train_dir):
        raise InputError(
            f"{train_dir}: training dir does not exist; run 'make train' or point --train-dir / "
            "TRAIN_DIR at a finished run"
        )
    metrics = read_metrics(train_dir)
    model_path = storage.join(train_dir, MODEL_FILE)
    model_bytes = _read(model_path, "the trained Keras model")
    return TrainerOutput(
        metrics=metrics,
        model_path=model_path,
        model_bytes=model_bytes,
        model_sha256=sha256_bytes(model_bytes),
    )
