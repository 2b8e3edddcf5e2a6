"""TF Serving's protos without TensorFlow (libs/serving_protos): the same messages, byte for byte.

The generated modules are tensorflow-serving-api's own, re-homed; these tests hold them to the
originals (descriptors and serialized bytes), check they load without TensorFlow, and check the
generator's output and errors.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from mnist_serving_protos import apis, generate

# Each generated module against the original of the same name.
PAIRS = {
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "get_model_metadata_pb2": "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "error_codes_pb2": "tensorflow.core.protobuf.error_codes_pb2",
}


def _original(module: str):
    import importlib

    return importlib.import_module(module)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_each_file_descriptor_is_the_originals(name):
    ours, theirs = getattr(apis, name), _original(PAIRS[name])
    assert ours.DESCRIPTOR.name == theirs.DESCRIPTOR.name
    assert ours.DESCRIPTOR.serialized_pb == theirs.DESCRIPTOR.serialized_pb


def _predict_request(module_predict, module_types):
    request = module_predict.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "serving_default"
    request.model_spec.version_label = "canary"
    tensor = request.inputs["images"]
    tensor.dtype = module_types.DT_FLOAT
    for size in (2, 28, 28):
        tensor.tensor_shape.dim.add().size = size
    tensor.tensor_content = np.linspace(0, 1, 2 * 784, dtype="<f4").tobytes()
    return request


def test_a_predict_request_is_the_same_bytes_both_ways():
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    ours = _predict_request(apis.predict_pb2, apis.types_pb2).SerializeToString(deterministic=True)
    theirs = _predict_request(predict_pb2, types_pb2).SerializeToString(deterministic=True)
    assert ours == theirs
    assert predict_pb2.PredictRequest.FromString(ours) == _predict_request(predict_pb2, types_pb2)
    assert apis.predict_pb2.PredictRequest.FromString(theirs).inputs["images"].tensor_shape.dim[2].size == 28


def test_answers_of_the_model_server_parse_the_same():
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

    response = predict_pb2.PredictResponse()
    response.model_spec.name = "mnist"
    response.model_spec.version.value = 7
    response.outputs["classes"].int64_val.extend([3, 9])
    status = get_model_status_pb2.GetModelStatusResponse()
    version = status.model_version_status.add()
    version.version, version.state, version.status.error_code = 7, 30, 0
    signatures = get_model_metadata_pb2.SignatureDefMap()
    signatures.signature_def["serving_default"].method_name = "tensorflow/serving/predict"
    metadata = get_model_metadata_pb2.GetModelMetadataResponse()
    metadata.metadata["signature_def"].Pack(signatures)

    for theirs, our_class in (
        (response, apis.predict_pb2.PredictResponse),
        (status, apis.get_model_status_pb2.GetModelStatusResponse),
        (metadata, apis.get_model_metadata_pb2.GetModelMetadataResponse),
    ):
        wire = theirs.SerializeToString(deterministic=True)
        ours = our_class.FromString(wire)
        assert ours.SerializeToString(deterministic=True) == wire
    unpacked = apis.get_model_metadata_pb2.SignatureDefMap()
    assert (
        apis.get_model_metadata_pb2.GetModelMetadataResponse.FromString(metadata.SerializeToString())
        .metadata["signature_def"]
        .Unpack(unpacked)
    )
    assert unpacked.signature_def["serving_default"].method_name == "tensorflow/serving/predict"


@pytest.mark.parametrize("order", ["ours first", "originals first"])
def test_a_process_may_load_both_in_either_order(order):
    """One descriptor pool: the second import must find the same files, not refuse them."""
    ours = "from mnist_serving_protos.apis import predict_pb2 as ours"
    theirs = "from tensorflow_serving.apis import predict_pb2 as theirs"
    code = "\n".join(
        [
            *((ours, theirs) if order == "ours first" else (theirs, ours)),
            "assert ours.DESCRIPTOR is theirs.DESCRIPTOR",
            "assert ours.PredictRequest is theirs.PredictRequest",
        ]
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_loading_them_imports_no_tensorflow():
    code = (
        "import sys\n"
        "from mnist_serving_protos import apis\n"
        "from mnist_common.serving_client import GrpcServingClient\n"
        "GrpcServingClient('127.0.0.1:9', 'mnist').close()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_serving', 'keras'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_generator_changes_import_lines_only(tmp_path):
    output = tmp_path / "generated"
    assert generate.main(["--output", str(output)]) == 0
    source = generate.default_source()
    generated = sorted(p.relative_to(output) for p in output.rglob("*_pb2*.py"))
    assert {str(p.with_suffix("")).replace("/", ".") for p in generated} >= set(generate.ENTRY_MODULES)
    for relative in generated:
        original = (source / relative).read_text().splitlines()
        ours = (output / relative).read_text().splitlines()
        assert len(original) == len(ours)
        for before, after in zip(original, ours, strict=True):
            if before != after:
                assert after.lstrip().startswith(
                    ("from mnist_serving_protos.generated.", "import mnist_serving_protos.")
                )
                assert after.replace("mnist_serving_protos.generated.", "") == before


def test_the_generator_names_what_is_missing(tmp_path, capsys):
    empty = tmp_path / "site-packages"
    (empty / "tensorflow_serving" / "apis").mkdir(parents=True)
    assert generate.main(["--source", str(empty), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "predict_pb2.py is missing" in error or "_pb2.py is missing" in error
    assert not (tmp_path / "out").exists(), "nothing half-written is left behind"
    assert generate.main(["--source", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")]) == 2
    assert "no tensorflow_serving/ package" in capsys.readouterr().err
