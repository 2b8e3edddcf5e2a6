"""Read what the reuse decision compares: the data manifest, the training, the published model."""

from __future__ import annotations

import json

from mnist_common import storage
from mnist_common.dataset import dataset_sha256
from mnist_exporter.versions import published_versions, version_path

from mnist_run.fingerprint import TrainingInputs

# Written by the exporter into every version (see services/model-exporter).
MODEL_CARD = ("assets.extra", "model_card.json")
TRAINING_METRICS = "metrics.json"


def _read_json(path: str) -> dict | None:
    try:
        document = json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def wanted_inputs(data_dir: str, parameters: dict) -> TrainingInputs:
    """DatasetError (naming the manifest) if the data is not prepared."""
    return TrainingInputs(dataset_sha256(data_dir), dict(parameters))


def newest_published(model_base_path: str) -> tuple[int, dict | None] | None:
    """(newest version TF Serving would serve, its model card or None), None if none."""
    versions = published_versions(model_base_path)
    if not versions:
        return None
    newest = versions[-1]
    return newest, _read_json(storage.join(version_path(model_base_path, newest), *MODEL_CARD))


def finished_training(train_dir: str) -> dict | None:
    """The training dir's metrics.json (written last by the trainer), None if absent."""
    return _read_json(storage.join(train_dir, TRAINING_METRICS))
