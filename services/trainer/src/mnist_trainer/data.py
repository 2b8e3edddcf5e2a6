"""The training and validation digits, and the augmented tf.data pipeline that feeds training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_common import dataset
from mnist_common.dataset import DatasetError

# Far apart so that (seed, epoch) pairs never produce the same shuffle seed.
_EPOCH_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class TrainingData:
    train_images: np.ndarray  # float32 [N, 28, 28] in [0, 1]
    train_labels: np.ndarray  # int32 [N]
    validation_images: np.ndarray
    validation_labels: np.ndarray
    dataset_sha256: str


def load_training_data(data_dir: str, limit: int | None = None) -> TrainingData:
    """Read the train and validation splits; raises IdxFormatError/DatasetError naming the file."""
    sha256 = dataset.dataset_sha256(data_dir)
    train = dataset.load_split(data_dir, "train", limit=limit)
    validation = dataset.load_split(data_dir, "validation")
    for name, split in (("train", train), ("validation", validation)):
        if len(split) == 0:
            raise DatasetError(f"{data_dir}: the {name} split holds no digits")
    return TrainingData(
        train_images=train.as_float(),
        train_labels=train.labels.astype(np.int32),
        validation_images=validation.as_float(),
        validation_labels=validation.labels.astype(np.int32),
        dataset_sha256=sha256,
    )


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Whole batches only: the last partial batch of an epoch is dropped (it would weigh its few
    digits as much as a full batch); the shuffle puts different digits there every epoch."""
    return num_examples // batch_size


def training_dataset(data: TrainingData, batch_size: int, seed: int, first_epoch: int, epochs: int, augment):
    """Augmented global batches for epochs first_epoch .. epochs-1, one epoch after another.

    Each epoch's order and distortions depend only on (seed, epoch, batch index), so a run
    resumed at epoch k sees exactly the batches the uninterrupted run would have seen.
    """
    import tensorflow as tf

    images = tf.constant(data.train_images)
    labels = tf.constant(data.train_labels)
    count = len(data.train_labels)

    def epoch_batches(epoch):
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=epoch_seed)
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(batch_size, drop_remainder=True)
            .enumerate()
            .map(lambda batch_index, indices: (epoch, batch_index, indices))
        )

    def gather_and_distort(epoch, batch_index, indices):
        augment_seed = tf.stack([tf.constant(seed, tf.int64) * _EPOCH_SEED_STRIDE + epoch, batch_index])
        return augment(tf.gather(images, indices), augment_seed), tf.gather(labels, indices)

    return (
        tf.data.Dataset.range(first_epoch, epochs)
        .flat_map(epoch_batches)
        .map(gather_and_distort, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
