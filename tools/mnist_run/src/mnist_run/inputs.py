"""The training inputs `make run` wants, for the pipeline's reuse decision."""

from __future__ import annotations

from mnist_common.dataset import dataset_sha256
from mnist_common.pipeline import TrainingInputs


def wanted_inputs(data_dir: str, parameters: dict) -> TrainingInputs:
    """DatasetError (naming the manifest) if the data is not prepared."""
    return TrainingInputs(dataset_sha256(data_dir), dict(parameters))
