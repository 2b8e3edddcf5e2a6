"""The real pipeline on a small slice of data, into pytest's tmp_path: mnist-train (512 digits,
one epoch), then mnist-export with a gate low enough for such a tiny model."""

from __future__ import annotations

import os

import pytest

from tests.e2e.e2e_helpers import Pipeline, export, train


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, data_dir) -> Pipeline:
    root = tmp_path_factory.mktemp("pipeline")
    built = Pipeline(data_dir, os.fspath(root / "training"), os.fspath(root / "models" / "mnist"))
    train(built)
    export(built)
    assert sorted(os.listdir(built.model_base_path)) == ["1"]
    return built
