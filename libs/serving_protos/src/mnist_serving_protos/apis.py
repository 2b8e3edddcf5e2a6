"""The modules a TF Serving client needs, from the generated tree (see mnist_serving_protos.generate)."""

from __future__ import annotations

try:
    from mnist_serving_protos.generated.tensorflow.core.framework import tensor_pb2, types_pb2
    from mnist_serving_protos.generated.tensorflow.core.protobuf import error_codes_pb2
    from mnist_serving_protos.generated.tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )
except ModuleNotFoundError as error:
    if not (error.name or "").startswith("mnist_serving_protos.generated"):
        raise
    raise ImportError(
        "TF Serving's protos are not generated yet: run `make setup`, or "
        "`python -m mnist_serving_protos.generate` where tensorflow-serving-api is installed"
    ) from error

__all__ = [
    "error_codes_pb2",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_service_pb2_grpc",
    "tensor_pb2",
    "types_pb2",
]
