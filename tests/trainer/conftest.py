"""Fixtures of the trainer tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def keras():
    import keras as keras_module  # imported once per session: TensorFlow takes seconds to load

    return keras_module
