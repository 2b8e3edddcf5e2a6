"""The Keras CNN for 28x28 digits.

Contract relied on by the exporter and the web UI: input `images` float32 [None, 28, 28] with
values in [0, 1]; output softmax probabilities float32 [None, 10]. build_model() with no
arguments returns a compiled, untrained model.

The network is sized for the benchmark: about 99.3 % on unseen digits (cross-validated) after
well under a minute of training on 2 CPU cores from only ~8,000 digits. Batch normalisation after
every layer lets a high learning rate converge in few epochs; every convolution is pooled before
it is normalised; dropout, label smoothing and the (training-only) augmentation fight overfitting
on so few digits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
# Recorded in metrics.json and with checkpoints: change it whenever the architecture changes,
# so old checkpoints are not resumed into a different network.
ARCHITECTURE = "mnist_cnn_v5"
# Moving statistics of batch norm must settle within a short run (~60 steps per epoch).
BATCH_NORM_MOMENTUM = 0.9
# Light: the augmentation already regularises, and a short run must not underfit
# (0.2 beat 0.3 on the validation digits).
DROPOUT = 0.2
# Training targets 0.9 + 0.01 for the right digit and 0.01 for each other one instead of 1 and 0:
# with so few digits a network otherwise learns to be certain of its training set. Worth about
# +0.1 point in cross-validation (docs/benchmarks.md); the exported model is unchanged by it.
LABEL_SMOOTHING = 0.1


def _bn_relu(x):
    from keras import layers

    x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
    return layers.ReLU()(x)


def _conv_pool_bn_relu(x, filters: int, kernel_size: int):
    """Convolution, then max-pooling, then batch norm and ReLU.

    Pooling first computes nearly what the usual conv-BN-ReLU-pool order does (max-pooling
    commutes with ReLU and with any increasing per-channel affine map, which batch norm is while
    its scale is positive; only the batch statistics are taken after pooling) but normalises a
    quarter of the values: less CPU per training step, which buys epochs within the time budget.
    """
    from keras import layers

    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False)(x)
    x = layers.MaxPooling2D()(x)
    return _bn_relu(x)


def build_model(learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3) -> keras.Model:
    """The CNN, compiled with Adam for sparse integer labels."""
    import keras  # imported here so that reading ARCHITECTURE does not load TensorFlow
    from keras import layers

    inputs = keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="images")
    x = layers.Reshape((*IMAGE_SHAPE, 1))(inputs)
    # The first 5x5 convolution sees every pixel. Cross-validated with label smoothing it scored
    # 99.13 and 99.12 % against the strided one's 99.00 and 98.97 % without (docs/benchmarks.md),
    # for about 15 % more training time.
    x = _conv_pool_bn_relu(x, 32, 5)  # 28x28 -> 14x14
    x = _conv_pool_bn_relu(x, 64, 3)  # 14x14 -> 7x7
    x = layers.Flatten()(x)
    x = layers.Dropout(DROPOUT)(x)
    x = layers.Dense(256, use_bias=False)(x)
    x = _bn_relu(x)
    x = layers.Dropout(DROPOUT)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="mnist_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def learning_rate_schedule(peak: float, steps_per_epoch: int, epochs: int):
    """One epoch of linear warm-up to `peak`, then cosine decay to 1% of it.

    Short runs need a large rate early and a small one at the end; the schedule is a function
    of the optimizer's step counter, which checkpoints save, so a resumed run continues it.
    """
    import keras

    total = steps_per_epoch * epochs
    warmup = min(steps_per_epoch, max(total - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10,
        decay_steps=max(total - warmup, 1),
        alpha=0.01,
        warmup_target=peak,
        warmup_steps=warmup,
    )
