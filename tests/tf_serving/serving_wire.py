"""Raw wire clients for the contract suite: plain `requests` for REST, the generated
tensorflow-serving-api stubs for gRPC. Deliberately independent of mnist_common.serving_client,
so the suite checks the wire format itself."""

from __future__ import annotations

import dataclasses

import grpc
import numpy as np
import requests
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

TIMEOUT_S = 30
_NUMPY = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_INT64: np.int64, types_pb2.DT_DOUBLE: np.float64}


@dataclasses.dataclass
class Answer:
    """What one predict call came back with, in the same terms for REST and gRPC."""

    ok: bool
    outputs: dict | None = None  # {name: np.ndarray}
    version: int | None = None  # gRPC carries it; TF Serving REST bodies do not
    signature_name: str | None = None
    error_kind: str | None = None  # NOT_FOUND / BAD_REQUEST (REST 400 or gRPC INVALID_ARGUMENT|FAILED_PRECONDITION)
    message: str = ""
    raw: object = None


def tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto the way most clients build it (tensor_content for numbers)."""
    dtype = {
        np.dtype(np.float32): types_pb2.DT_FLOAT,
        np.dtype(np.float64): types_pb2.DT_DOUBLE,
        np.dtype(np.int64): types_pb2.DT_INT64,
        np.dtype(object): types_pb2.DT_STRING,
    }[array.dtype]
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape]
        ),
    )
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(array.ravel().tolist())
    else:
        proto.tensor_content = array.tobytes()
    return proto


def from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    shape = [d.size for d in proto.tensor_shape.dim]
    dtype = _NUMPY[proto.dtype]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    field = {
        types_pb2.DT_FLOAT: proto.float_val,
        types_pb2.DT_INT64: proto.int64_val,
        types_pb2.DT_DOUBLE: proto.double_val,
    }[proto.dtype]
    return np.asarray(field, dtype=dtype).reshape(shape)


def rest_path(version: int | None, label: str | None) -> str:
    if version is not None:
        return f"/versions/{version}"
    if label is not None:
        return f"/labels/{label}"
    return ""


class RestApi:
    name = "rest"

    def __init__(self, server):
        self.server = server

    def predict(self, inputs: dict, *, model="mnist", version=None, label=None, signature="", columnar=False) -> Answer:
        body: dict = {}
        if signature:
            body["signature_name"] = signature
        if columnar:
            body["inputs"] = {k: _jsonable(v) for k, v in inputs.items()}
        else:
            ((name, value),) = inputs.items()
            body["instances"] = _jsonable(value)
        response = requests.post(
            self.server.model_url(rest_path(version, label) + ":predict", model), json=body, timeout=TIMEOUT_S
        )
        return self.answer(response, columnar)

    @staticmethod
    def answer(response, columnar=False) -> Answer:
        document = response.json()
        if response.status_code != 200:
            assert set(document) == {"error"}, document
            kind = {404: "NOT_FOUND", 400: "BAD_REQUEST", 503: "UNAVAILABLE"}.get(
                response.status_code, str(response.status_code)
            )
            return Answer(False, error_kind=kind, message=document["error"], raw=response)
        if columnar:
            outputs = {k: np.asarray(v) for k, v in document["outputs"].items()}
        else:
            predictions = document["predictions"]
            outputs = {k: np.asarray([p[k] for p in predictions]) for k in predictions[0]}
        return Answer(True, outputs=outputs, raw=response)


def _jsonable(value):
    if isinstance(value, np.ndarray) and value.dtype == object:
        import base64

        return [{"b64": base64.b64encode(v).decode("ascii")} for v in value.tolist()]
    return value.tolist() if isinstance(value, np.ndarray) else value


class GrpcApi:
    name = "grpc"

    def __init__(self, server):
        self.server = server
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(server.channel)

    def predict(self, inputs: dict, *, model="mnist", version=None, label=None, signature="", columnar=False) -> Answer:
        request = predict_pb2.PredictRequest()
        fill_spec(request.model_spec, model, version, label)
        if signature:
            request.model_spec.signature_name = signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tensor_proto(value))
        try:
            response = self.prediction.Predict(request, timeout=TIMEOUT_S)
        except grpc.RpcError as error:
            kind = {
                grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
                grpc.StatusCode.INVALID_ARGUMENT: "BAD_REQUEST",
                grpc.StatusCode.FAILED_PRECONDITION: "BAD_REQUEST",
                grpc.StatusCode.UNAVAILABLE: "UNAVAILABLE",
            }.get(error.code(), error.code().name)
            return Answer(False, error_kind=kind, message=error.details(), raw=error)
        return Answer(
            True,
            outputs={k: from_proto(v) for k, v in response.outputs.items()},
            version=response.model_spec.version.value,
            signature_name=response.model_spec.signature_name,
            raw=response,
        )

    def status(self, model="mnist", version=None, label=None):
        request = get_model_status_pb2.GetModelStatusRequest()
        fill_spec(request.model_spec, model, version, label)
        return self.models.GetModelStatus(request, timeout=TIMEOUT_S)

    def metadata(self, model="mnist", version=None):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        fill_spec(request.model_spec, model, version, None)
        return self.prediction.GetModelMetadata(request, timeout=TIMEOUT_S)


def fill_spec(spec, model, version, label) -> None:
    spec.name = model
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
