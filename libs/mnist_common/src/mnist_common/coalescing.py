"""Concurrent one-image predictions share one model server call (group commit).

    client = CoalescingClient(create_client("grpc", "mnist", grpc_address=...))
    client.predict(image[np.newaxis])   # from many threads at once

Every prediction of the web UI is one digit, and TF Serving's Predict takes a batch. While a call
for one version label is on its way, the one-digit predictions that arrive for the same label
wait, then go together in one call of up to `max_images` digits; the next group forms while that
call is on its way. With nothing in flight a prediction goes at once, alone: there is no timer,
so nothing waits at low load. Under load each call carries several digits: one RPC, one request
to parse and one slot in the model server's batch queue instead of several, which is most of
what a one-digit prediction costs on both sides of the wire (docs/benchmarks.md).

No thread of its own: the thread that finds no call in flight makes it (the leader). When its
call returns it hands the group that waited meanwhile to the first of them, which makes the next
call, and then hands out the answers. Each prediction gets its own row of the answer, from the
version that answered the call. A failure reaches every prediction of its call, as its own copy
of the error, with two exceptions:
- a refused input (BadRequest) in a call of several: each of its predictions is sent again
  alone, from its own thread, so one bad image (or a model server whose batches are smaller than
  the group) cannot fail its neighbours;
- an unavailable model server (ModelServerUnavailable: down, or too slow): the predictions that
  waited behind that call get the same error at once instead of queueing for another timeout, so
  no prediction waits for more than about one call's time.
"""

from __future__ import annotations

import copy
import threading

import numpy as np

from mnist_common.serving_client import (
    BadRequest,
    ModelMetadata,
    ModelServerUnavailable,
    ModelStatus,
    Prediction,
    ServingClient,
    ServingError,
    check_images,
)

# Digits in one call at most. TF Serving refuses a request larger than its max_batch_size (64 in
# services/tf-serving/config); a server configured smaller gets each digit alone (BadRequest above).
DEFAULT_MAX_IMAGES = 32


class _Waiting:
    """One prediction: its image, and what its call answered."""

    __slots__ = ("image", "ready", "prediction", "error", "group", "alone")

    def __init__(self, image: np.ndarray):
        self.image = image
        self.ready = threading.Event()
        self.prediction: Prediction | None = None
        self.error: BaseException | None = None
        self.group: list[_Waiting] | None = None  # set when this prediction's thread makes the call
        self.alone = False  # set when it is to be sent again by itself


class CoalescingClient(ServingClient):
    """A ServingClient whose one-image predict() calls, made at the same time, share calls."""

    def __init__(self, client: ServingClient, max_images: int = DEFAULT_MAX_IMAGES):
        if max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        self.client = client
        self.max_images = max_images
        self._lock = threading.Lock()
        self._queued: dict[str | None, list[_Waiting]] = {}
        self._in_flight: set[str | None] = set()

    # What the wrapped client is, so that callers read the same values through either.
    @property
    def protocol(self) -> str:  # type: ignore[override]
        return self.client.protocol

    @property
    def model_name(self) -> str:  # type: ignore[override]
        return self.client.model_name

    def model_status(self) -> ModelStatus:
        return self.client.model_status()

    def model_metadata(self) -> ModelMetadata:
        return self.client.model_metadata()

    def close(self) -> None:
        self.client.close()

    def queued(self, label: str | None = None) -> int:
        """How many predictions for `label` wait for the next call now."""
        with self._lock:
            return len(self._queued.get(label, ()))

    def predict(self, images: np.ndarray, label: str | None = None) -> Prediction:
        array = check_images(images)
        if len(array) != 1:
            return self._send(array, label)
        waiting = _Waiting(array[0])
        with self._lock:
            if label in self._in_flight:
                self._queued.setdefault(label, []).append(waiting)
            else:
                self._in_flight.add(label)
                waiting.group = [waiting]
        if waiting.group is None:
            waiting.ready.wait()  # answered, or handed the next call
        if waiting.group is not None:
            self._lead(waiting.group, label)
        if waiting.alone:
            return self._send(array, label)
        if waiting.error is not None:
            raise waiting.error
        return waiting.prediction

    def _send(self, images: np.ndarray, label: str | None) -> Prediction:
        # Without a label, called as ServingClient.predict(images): what the caller would have made.
        return self.client.predict(images) if label is None else self.client.predict(images, label=label)

    def _lead(self, group: list[_Waiting], label: str | None) -> None:
        """Make the call for `group`, hand the next group on, then wake the group's threads."""
        try:
            self._call(group, label)
        finally:
            for waiting in group:  # only if the call was interrupted: nobody waits for nothing
                if waiting.prediction is None and waiting.error is None and not waiting.alone:
                    waiting.error = ServingError("the model server call was interrupted")
            unavailable = group[0].error if isinstance(group[0].error, ModelServerUnavailable) else None
            with self._lock:
                queued = self._queued.pop(label, [])
                if unavailable is not None:
                    following, failed = [], queued
                else:
                    following, failed = queued[: self.max_images], []
                    if queued[self.max_images :]:
                        self._queued[label] = queued[self.max_images :]
                if not following:
                    self._in_flight.discard(label)
            for waiting in failed:
                waiting.error = copy.copy(unavailable)
                waiting.ready.set()
            if following:
                following[0].group = following
                following[0].ready.set()
            for waiting in group[1:]:
                waiting.ready.set()

    def _call(self, group: list[_Waiting], label: str | None) -> None:
        try:
            result = self._send(np.stack([waiting.image for waiting in group]), label)
        except BadRequest as error:
            if len(group) == 1:
                group[0].error = error
            else:
                for waiting in group:
                    waiting.alone = True
            return
        except Exception as error:  # noqa: BLE001 - every prediction of the call gets the failure
            group[0].error = error
            for waiting in group[1:]:
                waiting.error = copy.copy(error)
            return
        for row, waiting in enumerate(group):
            waiting.prediction = Prediction(
                result.probabilities[row : row + 1],
                result.classes[row : row + 1],
                result.model_name,
                result.model_version,
            )
