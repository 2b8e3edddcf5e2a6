"""What both front ends answer, built once on TF Serving's own response protos.

REST and gRPC differ only in how they read a request and write the answer; model resolution,
status, metadata, input checks and the batched signature call live here, so the two APIs cannot
drift apart.
"""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, status_pb2

from tfserving_standin.core.decode_budget import DECODE_DEADLINE_SECONDS, DecodeBudget, request_cost
from tfserving_standin.core.errors import ServingError, invalid_argument
from tfserving_standin.core.manager import ModelManager

_STATE_ENUM = get_model_status_pb2.ModelVersionStatus.State
SIGNATURE_DEF_FIELD = "signature_def"
_METHOD_NAMES = {"classify": "tensorflow/serving/classify", "regress": "tensorflow/serving/regress"}


class ServingApi:
    def __init__(
        self,
        manager: ModelManager,
        decode_budget: DecodeBudget | None = None,
        decode_deadline_seconds: float = DECODE_DEADLINE_SECONDS,
    ):
        self.manager = manager
        self.decode_budget = decode_budget or DecodeBudget()
        self.decode_deadline_seconds = decode_deadline_seconds

    def model_status(self, name: str, version=None, label=None) -> get_model_status_pb2.GetModelStatusResponse:
        response = get_model_status_pb2.GetModelStatusResponse()
        for state in self.manager.status(name, version, label):
            entry = response.model_version_status.add(version=state.version, state=_STATE_ENUM.Value(state.state))
            entry.status.CopyFrom(
                status_pb2.StatusProto(error_code=_error_code_enum(state.error_code), error_message=state.error_message)
            )
        return response

    def model_metadata(
        self, name: str, version=None, label=None, fields=(SIGNATURE_DEF_FIELD,)
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not fields:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        state = self.manager.resolve(name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = state.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in state.servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(definition)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def resolve_signature(self, name: str, version, label, signature_name: str):
        state = self.manager.resolve(name, version, label)
        return state, state.servable.signature(signature_name)

    async def predict(self, state, signature, inputs, output_filter=()) -> dict:
        rows = signature.check_inputs(inputs)
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                    f"{{{','.join(sorted(signature.outputs))}}}."
                )
        cost = self.decode_budget.admit(request_cost(inputs))
        try:
            submitted = self.manager.batcher(state, signature).submit(inputs, rows)
            if signature.takes_encoded_images:
                outputs = await self._within_decode_deadline(submitted)
            else:
                outputs = await submitted
        finally:
            self.decode_budget.release(cost)
        if output_filter:
            outputs = {alias: outputs[alias] for alias in output_filter}
        return outputs

    async def _within_decode_deadline(self, submitted):
        """A request that decodes images is answered within the deadline, whatever its images cost:
        one slow decode must not hold its client, or the queue behind it, for longer."""
        try:
            return await asyncio.wait_for(submitted, self.decode_deadline_seconds)
        except TimeoutError:
            raise ServingError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"Decoding the request's images took longer than {self.decode_deadline_seconds:g} s; "
                "send fewer or simpler images",
            ) from None

    def unsupported_method(self, name: str, version, label, signature_name: str, method: str):
        """:classify / :regress against this model's predict signatures: TF Serving's refusal."""
        state = self.manager.resolve(name, version, label)
        key = signature_name or "serving_default"
        definition = state.servable.signature_defs.get(key)
        if definition is None:
            raise invalid_argument(f'No signature was found with the name "{key}"')
        kind = "classification" if method == "classify" else "regression"
        raise invalid_argument(
            f"Expected {kind} signature method_name to be {_METHOD_NAMES[method]}. Was: {definition.method_name}"
        )


_ERROR_CODE_ENUM = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type


def _error_code_enum(name: str) -> int:
    value = _ERROR_CODE_ENUM.values_by_name.get(name) or _ERROR_CODE_ENUM.values_by_name["UNKNOWN"]
    return value.number


def status_json(response) -> dict:
    return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> dict:
    """TF Serving's REST metadata body: proto field names, the signature map unpacked."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    options = {"always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}
    return {
        "model_spec": json_format.MessageToDict(response.model_spec, **options),
        "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(signature_map, **options)},
    }
