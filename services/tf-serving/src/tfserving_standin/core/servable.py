"""One loaded model version: its SignatureDefs, input checks, the signature call and warmup.

A Servable is immutable once loaded, so request handlers and batch threads can share it without
locks; the manager swaps whole Servables in and out.
"""

from __future__ import annotations

import dataclasses
import logging

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from mnist_common import pipeline, storage
from tfserving_standin.core import tensors
from tfserving_standin.core.errors import ServingError, failed_precondition, invalid_argument

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit on replayed warmup records


class LoadError(Exception):
    """A version that cannot be served; error_code is the canonical code shown in the status API."""

    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: int  # tensorflow DataType enum
    shape: tuple[int | None, ...] | None  # None: unknown rank

    @property
    def np_dtype(self) -> np.dtype:
        return tensors.numpy_dtype(self.dtype)

    def shape_text(self) -> str:
        if self.shape is None:
            return "[?]"
        return "[" + ",".join("?" if size is None else str(size) for size in self.shape) + "]"


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    function: object  # the loaded ConcreteFunction

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> int:
        """Validate a request's tensors against the signature; returns its number of rows."""
        if set(inputs) != set(self.inputs):
            sent, expected = sorted(inputs), sorted(self.inputs)
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). "
                f"Sent extra: {{{','.join(sorted(set(sent) - set(expected)))}}}. "
                f"Missing but required: {{{','.join(sorted(set(expected) - set(sent)))}}}."
            )
        rows = None
        for name, spec in self.inputs.items():
            array = inputs[name]
            if array.dtype != spec.np_dtype:
                raise invalid_argument(
                    f"Input {name}: expects dtype {tensors.dtype_name(spec.dtype)} but "
                    f"{array.dtype.name if array.dtype != object else 'string'} was provided"
                )
            if spec.shape is not None and (
                array.ndim != len(spec.shape)
                or any(want is not None and want != got for want, got in zip(spec.shape, array.shape, strict=False))
            ):
                raise invalid_argument(
                    f"Input {name} has shape [{','.join(map(str, array.shape))}] but the signature "
                    f"{self.name} expects {spec.shape_text()}"
                )
            if array.ndim == 0:
                raise invalid_argument(f"Input {name} is a scalar; a batch (leading dimension) is needed")
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise invalid_argument(f"Input {name} contains NaN or Infinity; values must be finite numbers")
            if rows is None:
                rows = array.shape[0]
            elif array.shape[0] != rows:
                raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
        return rows or 0

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            results = self.function(**{name: tf.constant(value) for name, value in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            # e.g. an image_bytes value that is not a PNG/JPEG: the client's fault, shown briefly.
            raise invalid_argument(_tf_error_reason(error.message)) from None
        return {name: value.numpy() for name, value in results.items()}


_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")


def _tf_error_reason(message: str) -> str:
    """The line of a TensorFlow error that says what is wrong, without graph node details."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_TF_NOISE)]
    return (useful or lines or ["invalid input"])[0]


def _spec_from_tensor_info(name: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
    shape = None
    if not info.tensor_shape.unknown_rank:
        shape = tuple(None if dim.size < 0 else dim.size for dim in info.tensor_shape.dim)
    return TensorSpec(name=name, dtype=info.dtype, shape=shape)


def read_signature_defs(path: str) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDef map of the SavedModel's serving MetaGraph, as GetModelMetadata returns it."""
    pb_path = storage.join(path, pipeline.SAVED_MODEL_FILE)
    try:
        data = storage.read_bytes(pb_path)
    except FileNotFoundError:
        raise LoadError(
            "NOT_FOUND",
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        ) from None
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(data)
    except DecodeError:
        raise LoadError("DATA_LOSS", f"Can't parse {pb_path} as binary proto") from None
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise LoadError("NOT_FOUND", f"Could not find meta graph def matching supplied tags: {{ serve }} in {path}")


class Servable:
    def __init__(self, model_name: str, version: int, path: str, signature_defs, signatures):
        self.model_name = model_name
        self.version = version
        self.path = path
        self.signature_defs = signature_defs
        self.signatures: dict[str, Signature] = signatures

    @classmethod
    def load(cls, model_name: str, version: int, path: str) -> Servable:
        """Load and warm up a version; raises LoadError with the reason shown in the status API."""
        signature_defs = read_signature_defs(path)
        try:
            loaded = tf.saved_model.load(path, tags=["serve"])
        except tf.errors.OpError as error:
            raise LoadError(_code_name(error), _tf_error_reason(error.message)) from None
        except Exception as error:  # noqa: BLE001 - any failure to load is reported, not raised
            raise LoadError("UNKNOWN", f"Failed to load SavedModel at {path}: {_tf_error_reason(str(error))}") from None
        signatures = {}
        for name, definition in signature_defs.items():
            if name not in loaded.signatures:
                continue  # e.g. __saved_model_init_op: listed in metadata, not callable
            specs_in = {k: _spec_from_tensor_info(k, v) for k, v in definition.inputs.items()}
            specs_out = {k: _spec_from_tensor_info(k, v) for k, v in definition.outputs.items()}
            for spec in (*specs_in.values(), *specs_out.values()):
                if not tensors.supported(spec.dtype):
                    raise LoadError("UNIMPLEMENTED", f"Signature {name}: tensor {spec.name} has an unsupported dtype")
            signatures[name] = Signature(name, specs_in, specs_out, loaded.signatures[name])
        servable = cls(model_name, version, path, signature_defs, signatures)
        servable._keep_alive = loaded  # the functions need their captured variables
        servable.warmup()
        return servable

    def signature(self, name: str) -> Signature:
        key = name or DEFAULT_SIGNATURE
        found = self.signatures.get(key)
        if found is None:
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return found

    def warmup(self) -> None:
        """Replay assets.extra/tf_serving_warmup_requests, as TF Serving does before AVAILABLE."""
        warmup_path = pipeline.warmup_path(self.path)
        if not storage.exists(warmup_path):
            return
        count = 0
        try:
            for record in tf.data.TFRecordDataset([warmup_path]).take(MAX_WARMUP_RECORDS):
                entry = prediction_log_pb2.PredictionLog()
                entry.ParseFromString(record.numpy())
                if entry.WhichOneof("log_type") != "predict_log":
                    raise LoadError("UNIMPLEMENTED", f"Warmup record {count}: only predict_log records are supported")
                request = entry.predict_log.request
                signature = self.signature(request.model_spec.signature_name)
                inputs = {name: tensors.to_numpy(proto, name) for name, proto in request.inputs.items()}
                signature.check_inputs(inputs)
                signature.run(inputs)
                count += 1
        except ServingError as error:
            raise LoadError("INVALID_ARGUMENT", f"Warmup record {count} failed: {error.message}") from None
        except (tf.errors.OpError, DecodeError) as error:
            raise LoadError(
                "DATA_LOSS", f"Cannot read warmup file {warmup_path}: {_tf_error_reason(str(error))}"
            ) from None
        log.info("model %s version %d: replayed %d warmup requests", self.model_name, self.version, count)


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _code_name(error: tf.errors.OpError) -> str:
    """TF's error codes are the canonical codes gRPC uses, so the names are the same."""
    return _CODE_NAMES.get(error.error_code, "UNKNOWN")
