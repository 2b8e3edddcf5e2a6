"""An untrained model to serve: locust measures the serving path, not accuracy, so a model
exported with the exporter's own SavedModel code (seconds, not a training run) is enough."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def untrained_model_base(tmp_path_factory) -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tests.support.models import export_version, untrained_model

    base = tmp_path_factory.mktemp("models") / "mnist"
    export_version(untrained_model(), base, 1)
    return os.fspath(base)
