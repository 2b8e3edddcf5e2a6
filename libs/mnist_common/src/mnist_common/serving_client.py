"""The one TensorFlow Serving client of this repository: gRPC and REST behind one interface.

    client = create_client("grpc", model_name="mnist", grpc_address="localhost:8500")
    result = client.predict(images)      # float32 [N, 28, 28] in [0, 1]
    result.probabilities, result.classes, result.model_version
    client.model_status()                # every version and its state (AVAILABLE, LOADING, ...)
    client.model_metadata()              # the signatures, with input/output dtypes and shapes

Which version answered:
  gRPC  PredictResponse.model_spec carries the version that served the request.
  REST  TF Serving's predict response has no version. The client reads the model's status
        (GET /v1/models/<name>), takes the newest AVAILABLE version (the one TF Serving's default
        version policy serves) and sends the prediction to /v1/models/<name>/versions/<v>:predict,
        so the version reported is the one that answered or the request fails. The resolved
        version is cached for a couple of seconds and re-read when TF Serving says it is gone.
        With a version label (predict(images, label="canary")), the label's version is read
        the same way, from GET /v1/models/<name>/labels/<label>.

Every call has a timeout. UNAVAILABLE (connection refused, server restarting) and, over gRPC,
CANCELLED (the server stopping while a call was in flight) are retried a bounded number of times
with exponential backoff; a timeout is not retried (the server is slow:
retrying would only multiply the wait). Failures raise typed errors:
  ModelServerUnavailable  cannot reach the server, or it did not answer in time
  BadRequest              the server rejected the input (INVALID_ARGUMENT / HTTP 400)
  NotFound                no such model, version or signature (NOT_FOUND / HTTP 404)
  ServingError            the base class, and any other failure
A client holds one gRPC channel or one HTTP session; it is thread-safe, create it once per
process and reuse it.
"""

from __future__ import annotations

import abc
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from mnist_common import tensor_proto

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"
CLASSES_OUTPUT = "classes"
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_SECONDS = 0.05

T = TypeVar("T")


# ---------------------------------------------------------------------------- errors ----------


class ServingError(Exception):
    """The model server failed to answer a request; the message says why."""


class ModelServerUnavailable(ServingError):
    """The model server cannot be reached, or it did not answer within the timeout."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class BadRequest(ServingError):
    """The model server rejected the request as invalid."""


class NotFound(ServingError):
    """The model server has no such model, version or signature."""


# ---------------------------------------------------------------------------- results ---------


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # float32 [N, 10]
    classes: np.ndarray  # int64 [N]
    model_name: str
    model_version: int | None  # the version that answered, as the server reported it


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # UNKNOWN, START, LOADING, AVAILABLE, UNLOADING or END
    error_code: str = "OK"
    error_message: str = ""


@dataclass(frozen=True)
class ModelStatus:
    model_name: str
    versions: tuple[VersionStatus, ...]

    @property
    def available_versions(self) -> list[int]:
        return sorted(v.version for v in self.versions if v.state == "AVAILABLE")

    @property
    def is_available(self) -> bool:
        return bool(self.available_versions)

    def to_dict(self) -> dict:
        return {
            "model_name": self.model_name,
            "available": self.is_available,
            "versions": [
                {
                    "version": v.version,
                    "state": v.state,
                    "error_code": v.error_code,
                    "error_message": v.error_message,
                }
                for v in self.versions
            ],
        }


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # e.g. DT_FLOAT
    shape: tuple[int, ...] | None  # -1 for an unknown dimension; None for an unknown rank


@dataclass(frozen=True)
class Signature:
    method_name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]


@dataclass(frozen=True)
class ModelMetadata:
    model_name: str
    model_version: int | None
    signatures: dict[str, Signature] = field(default_factory=dict)

    def to_dict(self) -> dict:
        def tensors(infos: dict[str, TensorInfo]) -> dict:
            return {
                name: {"dtype": info.dtype, "shape": None if info.shape is None else list(info.shape)}
                for name, info in sorted(infos.items())
            }

        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "signatures": {
                name: {
                    "method_name": sig.method_name,
                    "inputs": tensors(sig.inputs),
                    "outputs": tensors(sig.outputs),
                }
                for name, sig in sorted(self.signatures.items())
            },
        }


def signatures_from_json(signature_def_map: dict) -> dict[str, Signature]:
    """Signatures from the JSON form of a SignatureDefMap's `signature_def` field.

    This is what TF Serving's REST metadata holds, and what json_format makes of the gRPC one.
    """

    def tensor_info(info: dict) -> TensorInfo:
        shape = info.get("tensor_shape", {})
        if shape.get("unknown_rank"):
            return TensorInfo(info.get("dtype", "DT_INVALID"), None)
        dims = tuple(int(dim.get("size", -1)) for dim in shape.get("dim", []))
        return TensorInfo(info.get("dtype", "DT_INVALID"), dims)

    return {
        name: Signature(
            method_name=sig.get("method_name", ""),
            inputs={k: tensor_info(v) for k, v in sig.get("inputs", {}).items()},
            outputs={k: tensor_info(v) for k, v in sig.get("outputs", {}).items()},
        )
        for name, sig in signature_def_map.items()
    }


# ---------------------------------------------------------------------------- interface -------


def check_images(images: np.ndarray) -> np.ndarray:
    """Images as a C-ordered float32 [N, 28, 28] array, or ValueError."""
    array = np.ascontiguousarray(images, dtype=np.float32)
    if array.ndim != 3 or array.shape[1:] != (28, 28) or array.shape[0] == 0:
        raise ValueError(f"expected images of shape [N, 28, 28] with N >= 1, got {list(array.shape)}")
    return array


class ServingClient(abc.ABC):
    """A TF Serving client for one model. Thread-safe; reuse one per process."""

    protocol: str

    def __init__(
        self,
        model_name: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = DEFAULT_RETRIES,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        signature_name: str = DEFAULT_SIGNATURE,
        input_name: str = DEFAULT_INPUT,
    ):
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.model_name = model_name
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.signature_name = signature_name
        self.input_name = input_name

    @abc.abstractmethod
    def predict(self, images: np.ndarray, label: str | None = None) -> Prediction:
        """Predict float32 images [N, 28, 28] in [0, 1]; `label`: the version label to ask for."""

    @abc.abstractmethod
    def model_status(self) -> ModelStatus:
        """The state of every version of the model."""

    @abc.abstractmethod
    def model_metadata(self) -> ModelMetadata:
        """The signatures of the version the server serves by default."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the channel or session."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _with_retries(self, call: Callable[[], T]) -> T:
        """Run `call`, retrying retryable unavailability with exponential backoff and jitter."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except ModelServerUnavailable as error:
                if not error.retryable or attempt == self.retries:
                    raise
            delay = self.backoff_seconds * (2**attempt)
            time.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")


def create_client(
    protocol: str,
    model_name: str,
    *,
    grpc_address: str | None = None,
    rest_url: str | None = None,
    **options: Any,
) -> ServingClient:
    """A gRPC (`protocol="grpc"`) or REST (`"rest"`) client; options go to the constructor."""
    if protocol == "grpc":
        if not grpc_address:
            raise ValueError("the gRPC client needs grpc_address (host:port)")
        return GrpcServingClient(grpc_address, model_name, **options)
    if protocol == "rest":
        if not rest_url:
            raise ValueError("the REST client needs rest_url (http://host:port)")
        return RestServingClient(rest_url, model_name, **options)
    raise ValueError(f"unknown serving protocol {protocol!r}; expected 'grpc' or 'rest'")


# ---------------------------------------------------------------------------- gRPC ------------


class GrpcServingClient(ServingClient):
    """PredictionService and ModelService over one gRPC channel."""

    protocol = "grpc"

    # gRPC's default reconnect backoff grows to 120 s, so a channel that saw the server down
    # would keep failing long after it is back. Cap it so recovery takes seconds.
    CHANNEL_OPTIONS = (
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
        ("grpc.enable_retries", 0),  # retries are ours, bounded and visible
        # Spread calls over every address the target resolves to (a headless Service's pods,
        # `dns:///tf-serving-headless:8500`), instead of pick_first's one connection for the
        # process's life; the server's max connection age makes the client re-resolve, so
        # replicas the autoscaler adds get their share.
        ("grpc.lb_policy_name", "round_robin"),
    )

    def __init__(self, address: str, model_name: str, **options: Any):
        super().__init__(model_name, **options)
        # TF Serving's own messages, without the TensorFlow runtime that importing them from
        # tensorflow-serving-api would load (libs/serving_protos); once per process, here.
        import grpc
        from mnist_serving_protos.apis import (
            error_codes_pb2,
            get_model_metadata_pb2,
            get_model_status_pb2,
            model_service_pb2_grpc,
            predict_pb2,
            prediction_service_pb2_grpc,
            types_pb2,
        )

        self._grpc = grpc
        self._types = types_pb2
        self._predict_pb2 = predict_pb2
        self._status_pb2 = get_model_status_pb2
        self._metadata_pb2 = get_model_metadata_pb2
        self._error_codes = error_codes_pb2
        self.address = address
        self._channel = grpc.insecure_channel(address, options=self.CHANNEL_OPTIONS)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request):
        def attempt():
            try:
                return method(request, timeout=self.timeout_seconds)
            except self._grpc.RpcError as error:
                raise self._translate(error) from None

        return self._with_retries(attempt)

    def _translate(self, error) -> ServingError:
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        codes = self._grpc.StatusCode
        where = f"model server {self.address}"
        if code == codes.UNAVAILABLE:
            return ModelServerUnavailable(f"{where} is unavailable: {details}")
        if code == codes.CANCELLED:
            # This client never cancels a call, so the server did: it is shutting down (a replica
            # drained in a rollout). The calls are read-only, so another attempt is safe.
            return ModelServerUnavailable(f"{where} cancelled the call (shutting down?): {details}")
        if code == codes.DEADLINE_EXCEEDED:
            return ModelServerUnavailable(f"{where} did not answer within {self.timeout_seconds:g} s", retryable=False)
        if code == codes.NOT_FOUND:
            return NotFound(f"{where}: {details}")
        if code in (codes.INVALID_ARGUMENT, codes.FAILED_PRECONDITION, codes.OUT_OF_RANGE):
            return BadRequest(f"{where} rejected the request: {details}")
        name = code.name if code is not None else "UNKNOWN"
        return ServingError(f"{where} failed ({name}): {details}")

    def _model_spec(self, spec, signature: bool) -> None:
        spec.name = self.model_name
        if signature:
            spec.signature_name = self.signature_name

    def predict(self, images: np.ndarray, label: str | None = None) -> Prediction:
        array = check_images(images)
        request = self._predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, signature=True)
        if label is not None:
            request.model_spec.version_label = label
        # Built by hand: tf.make_tensor_proto is slower and would put TensorFlow on the hot path.
        tensor = request.inputs[self.input_name]
        tensor.dtype = self._types.DT_FLOAT
        for size in array.shape:
            tensor.tensor_shape.dim.add().size = size
        tensor.tensor_content = array.astype("<f4", copy=False).tobytes()
        response = self._call(self._prediction.Predict, request)
        try:
            probabilities = tensor_to_numpy(response.outputs[PROBABILITIES_OUTPUT]).astype(np.float32)
            classes = tensor_to_numpy(response.outputs[CLASSES_OUTPUT]).astype(np.int64)
        except KeyError as error:
            raise ServingError(f"the model's answer lacks the output {error}") from None
        version = response.model_spec.version.value if response.model_spec.HasField("version") else None
        return _checked_prediction(probabilities, classes, len(array), self.model_name, version)

    def model_status(self) -> ModelStatus:
        request = self._status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec, signature=False)
        response = self._call(self._models.GetModelStatus, request)
        state_names = self._status_pb2.ModelVersionStatus.State.Name
        error_codes_pb2 = self._error_codes

        return ModelStatus(
            self.model_name,
            tuple(
                VersionStatus(
                    version=int(s.version),
                    state=state_names(s.state),
                    error_code=error_codes_pb2.Code.Name(s.status.error_code),
                    error_message=s.status.error_message,
                )
                for s in response.model_version_status
            ),
        )

    def model_metadata(self) -> ModelMetadata:
        from google.protobuf import json_format

        request = self._metadata_pb2.GetModelMetadataRequest()
        self._model_spec(request.model_spec, signature=False)
        request.metadata_field.append("signature_def")
        response = self._call(self._prediction.GetModelMetadata, request)
        signature_map = self._metadata_pb2.SignatureDefMap()
        if "signature_def" in response.metadata:
            response.metadata["signature_def"].Unpack(signature_map)
        as_json = json_format.MessageToDict(signature_map, preserving_proto_field_name=True)
        version = response.model_spec.version.value if response.model_spec.HasField("version") else None
        return ModelMetadata(self.model_name, version, signatures_from_json(as_json.get("signature_def", {})))


def tensor_to_numpy(tensor) -> np.ndarray:
    """A numeric output TensorProto of the model server as a numpy array."""
    known = tensor_proto.DTYPES.get(tensor.dtype)
    if known is None or known[0].kind not in "fiu":
        raise ServingError(f"unsupported output dtype {tensor_proto.dtype_enum_name(tensor)}")
    try:
        return tensor_proto.decode(tensor)
    except tensor_proto.TensorDecodeError as error:
        raise ServingError(f"the model server sent a malformed output tensor: {error}") from None


def _checked_prediction(probabilities, classes, count, model_name, version) -> Prediction:
    if probabilities.ndim != 2 or probabilities.shape[0] != count or classes.shape != (count,):
        raise ServingError(
            f"the model answered probabilities {list(probabilities.shape)} and classes "
            f"{list(classes.shape)} for {count} image(s)"
        )
    return Prediction(probabilities, classes, model_name, None if version is None else int(version))


# ---------------------------------------------------------------------------- REST ------------


class RestServingClient(ServingClient):
    """TF Serving's REST API (/v1/models/...) over one pooled requests.Session."""

    protocol = "rest"

    def __init__(
        self,
        base_url: str,
        model_name: str,
        version_cache_seconds: float = 2.0,
        pool_size: int = 16,
        **options: Any,
    ):
        super().__init__(model_name, **options)
        import requests
        from requests.adapters import HTTPAdapter

        self._requests = requests
        self.base_url = base_url.rstrip("/")
        self._model_url = f"{self.base_url}/v1/models/{model_name}"
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self.version_cache_seconds = version_cache_seconds
        self._version_lock = threading.Lock()
        self._cached_version: tuple[int, float] | None = None  # (version, monotonic expiry)
        self._cached_labels: dict[str, tuple[int, float]] = {}  # label: (version, monotonic expiry)

    def close(self) -> None:
        self._session.close()

    def _request(self, method: str, url: str, body: dict | None = None) -> dict:
        def attempt():
            try:
                response = self._session.request(
                    method,
                    url,
                    data=None if body is None else json.dumps(body),
                    headers={"Content-Type": "application/json"} if body is not None else None,
                    timeout=self.timeout_seconds,
                )
            except self._requests.Timeout:
                raise ModelServerUnavailable(
                    f"model server {self.base_url} did not answer within {self.timeout_seconds:g} s",
                    retryable=False,
                ) from None
            except self._requests.ConnectionError as error:
                raise ModelServerUnavailable(f"model server {self.base_url} is unavailable: {_short(error)}") from None
            return self._decode(response, url)

        return self._with_retries(attempt)

    def _decode(self, response, url: str) -> dict:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 200 and isinstance(payload, dict):
            return payload
        reason = payload.get("error") if isinstance(payload, dict) else None
        reason = reason or response.text[:200] or response.reason
        status = response.status_code
        if status == 200:
            raise ServingError(f"{url} answered with something that is not a JSON object")
        if status == 400:
            raise BadRequest(f"model server rejected the request: {reason}")
        if status == 404:
            raise NotFound(f"model server: {reason}")
        if status in (502, 503, 504):
            raise ModelServerUnavailable(f"model server {self.base_url} is unavailable ({status}): {reason}")
        raise ServingError(f"model server {self.base_url} failed ({status}): {reason}")

    def model_status(self) -> ModelStatus:
        payload = self._request("GET", self._model_url)
        try:
            versions = tuple(
                VersionStatus(
                    version=int(entry["version"]),
                    state=str(entry.get("state", "UNKNOWN")),
                    error_code=str(entry.get("status", {}).get("error_code", "OK")),
                    error_message=str(entry.get("status", {}).get("error_message", "")),
                )
                for entry in payload.get("model_version_status", [])
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServingError(f"unexpected model status from {self._model_url}: {error}") from None
        return ModelStatus(self.model_name, versions)

    def model_metadata(self) -> ModelMetadata:
        url = f"{self._model_url}/metadata"
        payload = self._request("GET", url)
        try:
            spec = payload.get("model_spec", {})
            version = int(spec["version"]) if spec.get("version") not in (None, "") else None
            signature_map = payload.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
            signatures = signatures_from_json(signature_map)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ServingError(f"unexpected metadata from {url}: {error}") from None
        return ModelMetadata(self.model_name, version, signatures)

    def serving_version(self, refresh: bool = False) -> int:
        """The newest AVAILABLE version: the one TF Serving answers with by default."""
        now = time.monotonic()
        cached = self._cached_version
        if cached is not None and not refresh and now < cached[1]:
            return cached[0]
        with self._version_lock:
            cached = self._cached_version
            if cached is not None and not refresh and time.monotonic() < cached[1]:
                return cached[0]
            status = self.model_status()
            if not status.is_available:
                states = ", ".join(f"{v.version}: {v.state}" for v in status.versions) or "none"
                raise NotFound(f"model {self.model_name} has no AVAILABLE version (versions: {states})")
            version = status.available_versions[-1]
            self._cached_version = (version, time.monotonic() + self.version_cache_seconds)
            return version

    def label_version(self, label: str, refresh: bool = False) -> int:
        """The version a label names, cached like serving_version."""
        cached = self._cached_labels.get(label)
        if cached is not None and not refresh and time.monotonic() < cached[1]:
            return cached[0]
        payload = self._request("GET", f"{self._model_url}/labels/{label}")
        try:
            version = int(payload["model_version_status"][0]["version"])
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ServingError(f"unexpected status of label {label} from {self._model_url}: {error}") from None
        self._cached_labels[label] = (version, time.monotonic() + self.version_cache_seconds)
        return version

    def predict(self, images: np.ndarray, label: str | None = None) -> Prediction:
        array = check_images(images)
        body = {"signature_name": self.signature_name, "inputs": {self.input_name: array.tolist()}}

        def version_now(refresh: bool = False) -> int:
            return self.serving_version(refresh) if label is None else self.label_version(label, refresh)

        version = version_now()
        try:
            payload = self._request("POST", f"{self._model_url}/versions/{version}:predict", body)
        except NotFound:
            # The version was unloaded since we looked (a newer one replaced it): look again once.
            version = version_now(refresh=True)
            payload = self._request("POST", f"{self._model_url}/versions/{version}:predict", body)
        outputs = payload.get("outputs")
        if not isinstance(outputs, dict):
            raise ServingError("the model's answer has no 'outputs' object")
        try:
            probabilities = np.asarray(outputs[PROBABILITIES_OUTPUT], dtype=np.float32)
            classes = np.asarray(outputs[CLASSES_OUTPUT], dtype=np.int64)
        except KeyError as error:
            raise ServingError(f"the model's answer lacks the output {error}") from None
        except (TypeError, ValueError) as error:
            raise ServingError(f"the model's answer is not numeric: {error}") from None
        return _checked_prediction(probabilities, classes, len(array), self.model_name, version)


def _short(error: Exception) -> str:
    """The last line of a requests/urllib3 error: the reason, without the retry machinery."""
    text = str(error)
    return text.rsplit(": ", 1)[-1].strip(" )'\"")[:200] or type(error).__name__
