"""A small real model: the trainer's architecture fitted briefly on the prepared digits.

Seconds, and its predictions mean something; each area picks how many digits and epochs (after
one epoch of 32 steps the batch-norm statistics still lag the weights, so accuracy may be near
chance; two epochs settle it).
"""

from __future__ import annotations

import os


def fit_tiny_model(
    data_dir: str, digits: int | None = None, epochs: int = 1, seed: int | None = None, batch_size: int = 32
):
    """build_model() fitted on the first `digits` training digits (all if None)."""
    import keras

    from mnist_common.dataset import load_split
    from mnist_trainer.model import build_model

    if seed is not None:
        keras.utils.set_random_seed(seed)
    train = load_split(data_dir, "train", limit=digits)
    model = build_model()
    model.fit(train.as_float(), train.labels, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def untrained_model():
    from mnist_trainer.model import build_model

    return build_model()


def export_version(model, base, version: int = 1) -> str:
    """Export `model` as <base>/<version> with the exporter's signatures; returns the folder."""
    from mnist_exporter.saved_model import export_saved_model

    target = os.path.join(os.fspath(base), str(version))
    export_saved_model(model, target)
    return target
