"""TF Serving's gRPC services on grpc.aio, for tensorflow-serving-api's stubs.

PredictionService: Predict, GetModelMetadata (and Classify/Regress, refused as TF Serving refuses
them for predict signatures); ModelService: GetModelStatus. Failures abort the call with the
canonical code TF Serving uses (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE).
"""

from __future__ import annotations

import logging
import time

import grpc
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfserving_standin import tensors
from tfserving_standin.api import ServingApi
from tfserving_standin.errors import ServingError, invalid_argument

log = logging.getLogger(__name__)


def _spec(model_spec):
    """(name, version, label) from a request's ModelSpec."""
    which = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if which == "version" else None
    label = model_spec.version_label if which == "version_label" else None
    return model_spec.name, version, label


class _Observed:
    """Times a call, records it in the metrics, and turns ServingError into a gRPC status."""

    def __init__(self, metrics, api_name: str, model_name: str):
        self._metrics, self._api_name, self._model_name = metrics, api_name, model_name
        self.version = None

    async def run(self, context, coroutine):
        started = time.perf_counter()
        status = "OK"
        try:
            return await coroutine
        except ServingError as error:
            status = error.code_name
            await context.abort(error.code, error.message)
        except Exception:  # noqa: BLE001 - never leak internals to the client
            status = "INTERNAL"
            log.exception("gRPC %s failed", self._api_name)
            await context.abort(grpc.StatusCode.INTERNAL, "Internal error; see the server log")
        finally:
            if self._metrics is not None:
                self._metrics.observe(self._model_name, self.version, self._api_name, "GRPC", status,
                                      time.perf_counter() - started)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, api: ServingApi, metrics=None):
        self._api = api
        self._metrics = metrics

    async def Predict(self, request, context):  # noqa: N802 - gRPC method name
        observed = _Observed(self._metrics, "predict", request.model_spec.name)

        async def answer():
            name, version, label = _spec(request.model_spec)
            state, signature = self._api.resolve_signature(name, version, label, request.model_spec.signature_name)
            observed.version = state.version
            inputs = {key: tensors.to_numpy(proto, key) for key, proto in request.inputs.items()}
            outputs = await self._api.predict(state, signature, inputs, tuple(request.output_filter))
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = state.version
            response.model_spec.signature_name = signature.name
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tensors.to_proto(value))
            return response

        return await observed.run(context, answer())

    async def GetModelMetadata(self, request, context):  # noqa: N802
        observed = _Observed(self._metrics, "get_model_metadata", request.model_spec.name)

        async def answer():
            name, version, label = _spec(request.model_spec)
            response = self._api.model_metadata(name, version, label, tuple(request.metadata_field))
            observed.version = response.model_spec.version.value
            return response

        return await observed.run(context, answer())

    async def Classify(self, request, context):  # noqa: N802
        return await self._refuse(request, context, "classify")

    async def Regress(self, request, context):  # noqa: N802
        return await self._refuse(request, context, "regress")

    async def _refuse(self, request, context, method):
        observed = _Observed(self._metrics, method, request.model_spec.name)

        async def answer():
            name, version, label = _spec(request.model_spec)
            self._api.unsupported_method(name, version, label, request.model_spec.signature_name, method)
            raise invalid_argument(f"{method} is not supported")  # unreachable: the line above raises

        return await observed.run(context, answer())


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, api: ServingApi, metrics=None):
        self._api = api
        self._metrics = metrics

    async def GetModelStatus(self, request, context):  # noqa: N802
        observed = _Observed(self._metrics, "get_model_status", request.model_spec.name)

        async def answer():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            name, version, label = _spec(request.model_spec)
            return self._api.model_status(name, version, label)

        return await observed.run(context, answer())


def make_server(api: ServingApi, metrics, address: str, max_message_bytes: int) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(api, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(api, metrics), server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot bind gRPC to {address}: {error}") from None
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server
