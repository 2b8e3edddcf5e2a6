"""The Keras CNN for 28x28 digits.

Contract relied on by the exporter: input float32 [None, 28, 28] with values in [0, 1];
output softmax probabilities float32 [None, 10].
"""

from __future__ import annotations

import keras
from keras import layers

NUM_CLASSES = 10


def build_model(learning_rate: float = 1e-3) -> keras.Model:
    """A small VGG-style CNN, compiled for sparse integer labels."""
    inputs = keras.Input(shape=(28, 28), dtype="float32", name="images")
    x = layers.Reshape((28, 28, 1))(inputs)
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="mnist_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
