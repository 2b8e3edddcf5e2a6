"""Held-out digits (the `test` split) that the start page and /api/v1/sample show."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np

from mnist_common import dataset, idx

log = logging.getLogger(__name__)


class SamplesUnavailable(RuntimeError):
    """The held-out digits could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class Sample:
    index: int
    pixels: np.ndarray  # float32 [28, 28] in [0, 1]
    label: int


class HeldOutDigits:
    """The test split, loaded once per process; random picks are thread-safe."""

    def __init__(self, images: np.ndarray | None, labels: np.ndarray | None, error: str = ""):
        self._images = images
        self._labels = labels
        self.error = error
        self._random = random.Random()

    @classmethod
    def load(cls, data_dir: str) -> HeldOutDigits:
        try:
            split = dataset.load_split(data_dir, "test")
        except (dataset.DatasetError, idx.IdxFormatError, OSError) as error:
            message = f"held-out digits not available from {data_dir}: {error} (run 'make data')"
            log.warning("%s", message)
            return cls(None, None, message)
        if len(split) == 0:
            return cls(None, None, f"{data_dir}: the test split is empty")
        return cls(split.as_float(), split.labels.astype(np.int64))

    def __len__(self) -> int:
        return 0 if self._labels is None else int(self._labels.shape[0])

    def random(self) -> Sample:
        if self._images is None:
            raise SamplesUnavailable(self.error)
        index = self._random.randrange(len(self))
        return Sample(index, self._images[index], int(self._labels[index]))
