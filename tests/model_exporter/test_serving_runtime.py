"""A version exported with this repository's TensorFlow loads and answers in the TensorFlow that
the pinned tensorflow/serving image is built for, and the check says so when it would not.

TF Serving runs the SavedModel with the TensorFlow it was compiled with, not ours: every op of the
graph and its functions must be registered there, and the GraphDef's versions must be within what
that runtime consumes (tensorflow/core/framework/versions.cc, CheckVersions). The check runs in the
serving-compatibility venv (`make serving-compat-setup`, requirements/serving-compat-constraints.txt).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from tests.support.paths import REPO_ROOT

CHECK = REPO_ROOT / "services" / "model-exporter" / "src" / "mnist_exporter" / "serving_runtime_check.py"
COMPAT_PYTHON = pathlib.Path(
    os.environ.get("SERVING_COMPAT_PYTHON", REPO_ROOT / "artifacts" / "serving-compat" / "venv" / "bin" / "python")
)
COMPAT_LOCK = REPO_ROOT / "requirements" / "serving-compat-constraints.txt"


def compat_tensorflow() -> str:
    (version,) = re.findall(r"^tensorflow-cpu==(\S+)$", COMPAT_LOCK.read_text(), re.M)
    return version


def serving_image() -> str:
    for doc in yaml.safe_load_all((REPO_ROOT / "kustomize" / "base" / "tf-serving.yaml").read_text()):
        if doc and doc["kind"] == "Deployment":
            return doc["spec"]["template"]["spec"]["containers"][0]["image"]
    raise AssertionError("no TF Serving Deployment")


def run_check(version_dir) -> tuple[int, dict]:
    if not COMPAT_PYTHON.exists():
        pytest.fail(f"{COMPAT_PYTHON} is missing: run 'make serving-compat-setup' (make test does)")
    result = subprocess.run(
        [COMPAT_PYTHON, CHECK, os.fspath(version_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stdout + result.stderr
    return result.returncode, json.loads(lines[-1])


def test_the_check_runs_the_tensorflow_of_the_pinned_serving_image():
    assert serving_image() == f"tensorflow/serving:{compat_tensorflow()}"
    makefile = (REPO_ROOT / "mk" / "40-serve.mk").read_text()
    assert f"SERVING_IMAGE ?= {serving_image()}" in makefile


@pytest.fixture(scope="module")
def checked(published_base):
    return run_check(pathlib.Path(published_base) / "1")


def test_an_exported_version_loads_and_answers_in_the_serving_runtime(checked, loaded_version):
    status, report = checked
    assert status == 0, report
    assert report["runtime"] == compat_tensorflow()
    assert report["signatures"] == ["predict_image_bytes", "serving_default"]
    # Exported by a newer TensorFlow than the runtime: that is allowed as long as the runtime
    # consumes the graph's min_consumer, which the check compared.
    versions = report["graph_def_versions"]
    assert versions["min_consumer"] <= versions["runtime"] < versions["producer"]
    # The same answers as this repository's TensorFlow gives for the same picture.
    ours = loaded_version.signatures["serving_default"](images=np.full((1, 28, 28), 0.5, np.float32))
    theirs = report["answers"]["serving_default"]
    np.testing.assert_allclose(theirs["probabilities"], ours["probabilities"].numpy(), atol=1e-5)
    assert theirs["classes"] == ours["classes"].numpy().tolist()


def rewritten(published_base, tmp_path, change) -> pathlib.Path:
    """A copy of version 1 whose saved_model.pb `change` edits."""
    from tensorflow.core.protobuf import saved_model_pb2

    copy = tmp_path / "1"
    shutil.copytree(pathlib.Path(published_base) / "1", copy)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((copy / "saved_model.pb").read_bytes())
    change(saved.meta_graphs[0].graph_def)
    (copy / "saved_model.pb").write_bytes(saved.SerializeToString())
    return copy


def test_an_op_the_runtime_lacks_is_named(published_base, tmp_path):
    def future_op(graph):
        function = next(f for f in graph.library.function if any(node.op == "Conv2D" for node in f.node_def))
        next(node for node in function.node_def if node.op == "Conv2D").op = "Conv2DFromTheFuture"

    status, report = run_check(rewritten(published_base, tmp_path, future_op))
    assert status == 1
    assert report["problems"] == ["ops this runtime does not have: Conv2DFromTheFuture"]


def test_a_graph_for_newer_consumers_only_is_refused(published_base, tmp_path):
    def newer_consumers(graph):
        graph.versions.min_consumer = 10**6

    status, report = run_check(rewritten(published_base, tmp_path, newer_consumers))
    assert status == 1
    assert "needs a consumer of version 1000000" in report["problems"][0]
