"""Helpers shared by the exporter tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os

import numpy as np

# A tiny model trained for one epoch reaches roughly 0.8-0.9, so tests lower the gate's bar;
# an untrained model stays near 0.1, far below it.
TEST_MIN_ACCURACY = "0.5"


def export_args(train_dir, data_dir, base, *extra) -> list[str]:
    return [
        "--train-dir",
        os.fspath(train_dir),
        "--data-dir",
        os.fspath(data_dir),
        "--model-base-path",
        os.fspath(base),
        "--min-accuracy",
        TEST_MIN_ACCURACY,
        *extra,
    ]


def snapshot(folder) -> dict[str, bytes]:
    """Every file under folder (relative path -> content) plus every folder name."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            state[os.path.relpath(os.path.join(root, name), folder) + "/"] = b""
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                state[os.path.relpath(path, folder)] = handle.read()
    return state


def validation_digits(data_dir: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    from mnist_common.dataset import load_split

    split = load_split(data_dir, "validation", limit=count)
    return split.images, split.labels
