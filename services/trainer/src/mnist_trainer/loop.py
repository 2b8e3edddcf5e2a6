"""The training and evaluation steps, written for tf.distribute.

Keras 3's Model.fit does not work under MultiWorkerMirroredStrategy (keras-team/keras#20585:
it fails while building the model from a distributed batch), so the trainer runs its own loop:
each replica computes the loss of its share of the global batch, and the Keras optimizer
all-reduces the gradients across workers before applying them. Without a distribution
strategy the same code runs on TensorFlow's default strategy, in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnist_trainer.model import LABEL_SMOOTHING


@dataclass(frozen=True)
class EpochFigures:
    loss: float
    accuracy: float


class TrainingLoop:
    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy, global_batch_size: int):
        self.model = model
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self._train_step = tf.function(self._distributed_train_step)
        self._predict = tf.function(lambda images: model(images, training=False))

    def _replica_train_step(self, images, labels):
        with tf.GradientTape() as tape:
            probabilities = self.model(images, training=True)
            targets = tf.one_hot(labels, tf.shape(probabilities)[1], dtype=probabilities.dtype)
            per_example = keras.losses.categorical_crossentropy(targets, probabilities, label_smoothing=LABEL_SMOOTHING)
            # Summed over this replica's share and divided by the *global* batch size, so the
            # all-reduced (summed) gradient is the gradient of the mean loss over the batch.
            loss = tf.reduce_sum(per_example) / self.global_batch_size
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.model.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=False))
        predicted = tf.argmax(probabilities, axis=1, output_type=labels.dtype)
        correct = tf.reduce_sum(tf.cast(predicted == labels, tf.float32))
        return tf.reduce_sum(per_example), correct

    def _distributed_train_step(self, batch):
        loss_sum, correct = self.strategy.run(self._replica_train_step, args=batch)
        return (
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None),
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
        )

    def distribute(self, dataset: tf.data.Dataset):
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def train_epoch(self, batches, steps: int, check_stop: Callable[[], None]) -> EpochFigures:
        """Run `steps` global batches from the distributed iterator `batches`, calling
        check_stop before each (it raises to stop between steps, never inside one)."""
        loss_total, correct_total = 0.0, 0.0
        for _ in range(steps):
            check_stop()
            loss_sum, correct = self._train_step(next(batches))
            loss_total += float(loss_sum)
            correct_total += float(correct)
        examples = steps * self.global_batch_size
        return EpochFigures(loss=loss_total / examples, accuracy=correct_total / examples)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> EpochFigures:
        """Loss and accuracy on a whole split. Every worker computes it alone, on identical
        weights, so all agree without exchanging anything."""
        loss_total, correct_total = 0.0, 0
        for start in range(0, len(labels), batch_size):
            probabilities = self._predict(tf.constant(images[start : start + batch_size])).numpy()
            batch_labels = labels[start : start + batch_size]
            picked = probabilities[np.arange(len(batch_labels)), batch_labels]
            loss_total += float(-np.log(np.clip(picked, 1e-7, 1.0)).sum())
            correct_total += int((probabilities.argmax(axis=1) == batch_labels).sum())
        return EpochFigures(loss=loss_total / len(labels), accuracy=correct_total / len(labels))
