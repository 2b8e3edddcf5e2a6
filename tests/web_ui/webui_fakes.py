"""A ServingClient that answers without a model server, for the web UI's unit tests."""

from __future__ import annotations

import threading

import numpy as np

from mnist_common import serving_client as sc


class FakeServingClient(sc.ServingClient):
    """Predicts the class whose index is the rounded mean brightness x 10 (deterministic).

    `failure` makes every call raise that error until it is set back to None: the model server
    going down and coming back.
    """

    protocol = "fake"

    def __init__(self, model_name: str = "mnist", version: int = 3):
        super().__init__(model_name)
        self.version = version
        self.failure: Exception | None = None
        self.predicted: list[np.ndarray] = []
        self._lock = threading.Lock()

    def _maybe_fail(self) -> None:
        if self.failure is not None:
            raise self.failure

    def predict(self, images: np.ndarray) -> sc.Prediction:
        self._maybe_fail()
        images = sc.check_images(images)
        with self._lock:
            self.predicted.extend(images)
        classes = np.clip(np.rint(images.mean(axis=(1, 2)) * 10), 0, 9).astype(np.int64)
        probabilities = np.full((len(images), 10), 0.02, dtype=np.float32)
        probabilities[np.arange(len(images)), classes] = 0.82
        return sc.Prediction(probabilities, classes, self.model_name, self.version)

    def model_status(self) -> sc.ModelStatus:
        self._maybe_fail()
        return sc.ModelStatus(self.model_name, (sc.VersionStatus(self.version, "AVAILABLE"),))

    def model_metadata(self) -> sc.ModelMetadata:
        self._maybe_fail()
        signature = sc.Signature(
            "tensorflow/serving/predict",
            {"images": sc.TensorInfo("DT_FLOAT", (-1, 28, 28))},
            {
                "probabilities": sc.TensorInfo("DT_FLOAT", (-1, 10)),
                "classes": sc.TensorInfo("DT_INT64", (-1,)),
            },
        )
        return sc.ModelMetadata(self.model_name, self.version, {"serving_default": signature})

    def close(self) -> None:
        pass
