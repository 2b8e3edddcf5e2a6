"""The prepared MNIST data set: IDX files per split plus a manifest of their sha256.

Layout of a data dir (local or any tf.io.gfile URI):
    <split>-images-idx3-ubyte.gz   uint8 [N, 28, 28]
    <split>-labels-idx1-ubyte.gz   uint8 [N]
    manifest.json                  source, seed, and sha256 + count of every file
for split in train, validation and test. `test` is held out: nothing trains or selects on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from mnist_common import idx, storage

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


class DatasetError(ValueError):
    """The data dir is missing a file, or its files disagree with each other."""


def images_file(split: str) -> str:
    return f"{split}-images-idx3-ubyte.gz"


def labels_file(split: str) -> str:
    return f"{split}-labels-idx1-ubyte.gz"


def split_files(split: str) -> tuple[str, str]:
    return images_file(split), labels_file(split)


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # uint8 [N]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def as_float(self) -> np.ndarray:
        """Images as float32 in [0, 1], the model's input."""
        return self.images.astype(np.float32) / 255.0


def load_split(data_dir: str, split: str, limit: int | None = None) -> Split:
    """Read one split and check that images and labels agree."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    images_path = storage.join(data_dir, images_file(split))
    labels_path = storage.join(data_dir, labels_file(split))
    images = idx.read(images_path)
    labels = idx.read(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise idx.IdxFormatError(
            f"{images_path}: expected uint8 images of shape [N, 28, 28], got {images.dtype} {list(images.shape)}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise idx.IdxFormatError(
            f"{labels_path}: expected uint8 labels of shape [N], got {labels.dtype} {list(labels.shape)}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{labels_path}: {labels.shape[0]} labels but {images_path} holds {images.shape[0]} images")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise idx.IdxFormatError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Split(images=images, labels=labels)


def read_manifest(data_dir: str) -> dict:
    path = storage.join(data_dir, MANIFEST)
    try:
        return json.loads(storage.read_bytes(path))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no manifest; run 'make data' first") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error})") from None


def dataset_sha256(data_dir: str) -> str:
    """One digest naming the whole prepared data set (from the manifest)."""
    return read_manifest(data_dir)["dataset_sha256"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def combined_sha256(file_digests: dict[str, str]) -> str:
    """A digest of digests, independent of dict order."""
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(file_digests.items()))
    return sha256_bytes(text.encode())
