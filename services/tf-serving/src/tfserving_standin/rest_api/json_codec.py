"""TF Serving's JSON predict format: request bodies to numpy, outputs back to JSON.

Row format:      {"signature_name": ..., "instances": [instance, ...]}
                 an instance is a value (one input) or {"input": value, ...}; answer
                 {"predictions": [...]}, a dict per instance when the signature has several outputs.
Columnar format: {"inputs": value | {"input": value, ...}}; answer {"outputs": value | {...}}.
Binary strings are {"b64": "..."}. Messages follow TF Serving's json_tensor.cc where clients may
match on them.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
import orjson

from tfserving_standin.core.errors import invalid_argument

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse_body(body: bytes) -> dict:
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson refuses NaN/Infinity, which TF Serving's parser accepts: parse those with the
        # standard library so the input check can say what is wrong with the values.
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
            raise invalid_argument(f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_short(document)} Is not object")
    return document


def signature_name(document: dict) -> str:
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_short(document)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def request_format(document: dict) -> str:
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if has_instances:
        return "row"
    if has_inputs:
        return "columnar"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _short(value) -> str:
    try:
        text = json.dumps(value, default=str)
    except RecursionError:  # orjson parses up to 1024 levels, more than json.dumps can write
        return "<nested too deeply to show>"
    return text if len(text) <= 200 else text[:200] + "..."


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _to_bytes(value, name: str):
    if isinstance(value, str):
        return value.encode("utf-8")
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument(f"Input {name}: Unable to base64 decode") from None
    raise invalid_argument(f"JSON Value: {_short(value)} Type: {type(value).__name__} is not of expected type: string")


_MAX_RANK = 32  # numpy allows 64 dimensions; no real tensor input comes near either


def _string_array(value, name: str) -> np.ndarray:
    def walk(item, depth=0):
        if isinstance(item, list):
            if depth >= _MAX_RANK:
                raise invalid_argument(f"Input {name}: lists nested more than {_MAX_RANK} deep")
            return [walk(element, depth + 1) for element in item]
        return _to_bytes(item, name)

    nested = walk(value)
    try:
        array = np.array(nested, dtype=object)
    except ValueError:
        raise invalid_argument(f"Input {name}: lists of unequal length; a tensor must be rectangular") from None
    if array.dtype != object or any(isinstance(x, list) for x in array.ravel()):
        raise invalid_argument(f"Input {name}: lists of unequal length; a tensor must be rectangular")
    return array


def to_array(value, spec, name: str) -> np.ndarray:
    """A JSON value as an array of the signature's dtype, or a clear INVALID_ARGUMENT."""
    if spec.np_dtype == object:  # noqa: E721 - a numpy dtype compares equal to object, it is not the type
        return _string_array(value, name)
    try:
        array = np.asarray(value)
    except ValueError:
        raise invalid_argument(
            f"Input {name}: lists of unequal length or nested too deeply; a tensor must be rectangular"
        ) from None
    kind, want = array.dtype.kind, spec.np_dtype
    if array.size and (
        (want.kind == "f" and kind not in "fiu")
        or (want.kind in "iu" and kind not in "iu")
        or (want.kind == "b" and kind != "b")
    ):
        raise invalid_argument(
            f"Input {name}: JSON values of type {_json_kind(array)} are not of expected type: "
            f"{'float' if want.kind == 'f' else want.name}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(want, copy=False)
    if (
        want.kind == "f"
        and kind in "iuf"
        and array.size
        and not np.isfinite(converted).all()
        and np.isfinite(array).all()
    ):
        raise invalid_argument(f"Input {name}: Cannot convert JSON value to {want.name} without loss of precision.")
    if want.kind in "iu" and array.size and not np.array_equal(converted, array):
        raise invalid_argument(f"Input {name}: value out of range for {want.name}")
    return converted


def _json_kind(array: np.ndarray) -> str:
    return {"U": "String", "S": "String", "b": "True/False", "O": "Object/Null"}.get(array.dtype.kind, str(array.dtype))


def inputs_from_document(document: dict, input_specs: dict) -> tuple[str, dict[str, np.ndarray]]:
    """(format, {input name: array}) from a predict body, for a signature's input specs."""
    form = request_format(document)
    names = sorted(input_specs)
    if form == "row":
        instances = document["instances"]
        if not isinstance(instances, list):
            raise invalid_argument("Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid_argument("No values in 'instances' array")
        named = isinstance(instances[0], dict) and not _is_b64(instances[0])
        if not named:
            if len(names) > 1:
                raise invalid_argument(
                    "instances is a plain list, but expecting list of objects as multiple input tensors "
                    "required as per tensorinfo_map"
                )
            return form, {names[0]: to_array(instances, input_specs[names[0]], names[0])}
        columns: dict[str, list] = {name: [] for name in names}
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict) or _is_b64(instance):
                raise invalid_argument(f"Expecting object but got list at item {index} of input list")
            if set(instance) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"keys {sorted(instance)} must be equal to: {','.join(names)}"
                )
            for name in names:
                columns[name].append(instance[name])
        return form, {name: to_array(columns[name], input_specs[name], name) for name in names}
    inputs = document["inputs"]
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        return form, {names[0]: to_array(inputs, input_specs[names[0]], names[0])}
    arrays = {}
    for name in names:
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = to_array(inputs[name], input_specs[name], name)
    extra = set(inputs) - set(names)
    if extra:
        raise invalid_argument(f"Unexpected named input(s) in 'inputs' object: {','.join(sorted(extra))}")
    return form, arrays


def _jsonable(array: np.ndarray, name: str):
    if array.dtype != object:
        return array
    encode_b64 = name.endswith("_bytes")  # TF Serving's rule for binary string outputs

    def convert(item):
        if isinstance(item, list):
            return [convert(element) for element in item]
        if encode_b64:
            return {"b64": base64.b64encode(item).decode("ascii")}
        return item.decode("utf-8", errors="replace")

    return convert(array.tolist())


def predict_response(form: str, outputs: dict[str, np.ndarray]) -> bytes:
    names = sorted(outputs)
    if form == "columnar":
        if len(names) == 1:
            return orjson.dumps({"outputs": _jsonable(outputs[names[0]], names[0])}, option=_DUMP_OPTIONS)
        return orjson.dumps({"outputs": {n: _jsonable(outputs[n], n) for n in names}}, option=_DUMP_OPTIONS)
    if len(names) == 1:
        return orjson.dumps({"predictions": _jsonable(outputs[names[0]], names[0])}, option=_DUMP_OPTIONS)
    rows = {len(value) for value in outputs.values() if value.ndim}
    if len(rows) != 1 or any(value.ndim == 0 for value in outputs.values()):
        raise invalid_argument("Output tensors have inconsistent batch sizes; use the columnar 'inputs' format")
    columns = {n: _jsonable(outputs[n], n) for n in names}
    count = rows.pop()
    predictions = [{n: columns[n][i] for n in names} for i in range(count)]
    return orjson.dumps({"predictions": predictions}, option=_DUMP_OPTIONS)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
