"""The app's one path to the model server: calls the shared client, times it, and turns serving
failures into API errors (503 when the server is down, slow or has no model; 502 otherwise)."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from mnist_common import serving_client as sc
from mnist_webui.errors import ApiError
from mnist_webui.metrics import Metrics
from mnist_webui.rollout import RolloutView, choose

log = logging.getLogger(__name__)


_WAIT_MARKER = ".waiting-for-model-server"  # in the workers' shared metrics folder
_waited_here = False


def first_wait_in_this_server() -> bool:
    """True once per web UI server: gunicorn's workers share PROMETHEUS_MULTIPROC_DIR (made per
    start, removed at exit), where the first worker to wait leaves a marker; a process without
    it (tests, the Flask dev server) says it once itself."""
    global _waited_here
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        try:
            os.close(os.open(os.path.join(folder, _WAIT_MARKER), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False
        except OSError:
            pass  # an unwritable folder: once per process instead
    first, _waited_here = not _waited_here, True
    return first


class ModelGateway:
    def __init__(self, client: sc.ServingClient, metrics: Metrics, rollout: RolloutView | None = None):
        self.client = client
        self.metrics = metrics
        self.rollout = rollout
        # What the last call found: "up", "down" (unreachable, too slow, or no available version)
        # or "unknown" before the first call; and when (time.monotonic()).
        self.server_state = "unknown"
        self.server_state_at: float | None = None
        # Until the model server has answered once, "unavailable" and "no version yet" are a
        # start-up (make run starts both at once; the model loads for seconds): one INFO line
        # "waiting for the model server", not a WARNING per call.
        self.seen_up = False

    def _note_server_state(self, up: bool) -> None:
        self.seen_up = self.seen_up or up
        self.server_state = "up" if up else "down"
        self.server_state_at = time.monotonic()
        self.metrics.model_server_up.set(1 if up else 0)

    @property
    def model_name(self) -> str:
        return self.client.model_name

    def _call(self, name: str, function, *args):
        started = time.perf_counter()
        outcome = "ok"
        try:
            result = function(*args)
        except sc.ServingError as error:
            outcome = type(error).__name__
            # A refused input still means the server answered.
            self._note_server_state(isinstance(error, sc.BadRequest))
            raise self._api_error(error) from None
        finally:
            self.metrics.child(self.metrics.model_calls, name, outcome).observe(time.perf_counter() - started)
        self._note_server_state(True)
        return result

    def _api_error(self, error: sc.ServingError) -> ApiError:
        # The details (addresses, server messages) go to the log, not to the visitor.
        if self.seen_up or not isinstance(error, sc.ModelServerUnavailable | sc.NotFound):
            log.warning("model server call failed: %s", error)
        elif first_wait_in_this_server():
            # Said calmly, the details at DEBUG: a model server that is still loading is no failure.
            why = "no version loaded yet" if isinstance(error, sc.NotFound) else "not answering yet"
            log.info("waiting for the model server (%s; it may still be starting)", why)
            log.debug("model server: %s", error)
        else:
            log.debug("still waiting for the model server: %s", error)
        if isinstance(error, sc.ModelServerUnavailable):
            return ApiError(503, "the model server is unavailable or too slow; try again shortly")
        if isinstance(error, sc.NotFound):
            return ApiError(503, f"the model server has no available version of model '{self.model_name}'")
        if isinstance(error, sc.BadRequest):
            return ApiError(502, "the model server rejected the input")
        return ApiError(502, "the model server failed to answer")

    def rollout_state(self):
        return self.rollout.current() if self.rollout is not None else None

    def predict(self, image: np.ndarray) -> dict:
        """The API's prediction object for one float32 [28, 28] image, from the stable or the
        canary version as the rollout's split draws it."""
        label, intended_version = choose(self.rollout_state())
        batch = image[np.newaxis]
        started = time.perf_counter()
        try:
            result = self._call("predict", self.client.predict, batch, label)
        except ApiError:
            # Counted against the version the label was meant to reach: a failing canary shows.
            self.metrics.observe_prediction(intended_version, label, False, time.perf_counter() - started, None)
            raise
        seconds = time.perf_counter() - started
        probabilities = result.probabilities[0]
        self.metrics.observe_prediction(result.model_version, label, True, seconds, float(probabilities.max()))
        model = {"name": result.model_name, "version": result.model_version}
        if label is not None:  # without a rollout the answer stays as it was
            model["label"] = label
        return {
            "prediction": int(result.classes[0]),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "model": model,
            "latency_ms": round(seconds * 1000.0, 2),
        }

    def status(self) -> sc.ModelStatus:
        return self._call("status", self.client.model_status)

    def metadata(self) -> sc.ModelMetadata:
        return self._call("metadata", self.client.model_metadata)
