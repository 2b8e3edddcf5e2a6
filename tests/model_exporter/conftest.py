"""Fixtures for the exporter tests: one tiny trained model and one published version, shared.

Training and exporting cost seconds each, so the session builds them once; tests that change a
base path copy the shared one into their own tmp_path first.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.model_exporter.exporter_helpers import export_args
from tests.support.models import fit_tiny_model


def _fit_tiny_model(data_dir: str):
    # Small batches give ~60 steps: enough for batch-norm moving statistics (which inference
    # uses) to settle, so the model is clearly better than chance (about 0.9).
    return fit_tiny_model(data_dir, digits=2000, epochs=1, seed=7)


def _save_trainer_output(model, train_dir, data_dir: str, **metrics) -> str:
    from mnist_common.dataset import dataset_sha256

    os.makedirs(train_dir, exist_ok=True)
    model.save(os.path.join(train_dir, "model.keras"))
    payload = {
        "validation_accuracy": None,
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 0.001,
        "seed": 7,
        "dataset_sha256": dataset_sha256(data_dir),
        **metrics,
    }
    with open(os.path.join(train_dir, "metrics.json"), "w") as handle:
        json.dump(payload, handle)
    return os.fspath(train_dir)


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, data_dir) -> str:
    """<dir>/model.keras + metrics.json of a tiny trained model, like the trainer writes."""
    model = _fit_tiny_model(data_dir)
    return _save_trainer_output(model, tmp_path_factory.mktemp("trained"), data_dir)


@pytest.fixture(scope="session")
def untrained_dir(tmp_path_factory, data_dir) -> str:
    from mnist_trainer.model import build_model

    return _save_trainer_output(build_model(), tmp_path_factory.mktemp("untrained"), data_dir, epochs=0)


@pytest.fixture(scope="session")
def published_base(tmp_path_factory, trained_dir, data_dir) -> str:
    """A base path holding version 1, exported from trained_dir by the real CLI. Read only."""
    from mnist_exporter.cli import main

    base = tmp_path_factory.mktemp("published") / "mnist"
    assert main(export_args(trained_dir, data_dir, base)) == 0
    return os.fspath(base)


@pytest.fixture(scope="session")
def loaded_version(published_base):
    import tensorflow as tf

    return tf.saved_model.load(os.path.join(published_base, "1"))


@pytest.fixture
def base_copy(published_base, tmp_path) -> str:
    """A private copy of the published base path, for tests that change it."""
    destination = tmp_path / "mnist"
    shutil.copytree(published_base, destination)
    return os.fspath(destination)
