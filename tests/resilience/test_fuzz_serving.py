"""Property-based fuzzing (hypothesis) of the model server's REST API (tfserving-standin, TF
Serving's URLs and bodies). Never a 5xx, never a stack trace, always {"error": reason}; the same
process stays up and its memory stays bounded."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.resilience.figures import record
from tests.resilience.fuzzing import (
    EXAMPLES_PER_TARGET,
    FUZZ_SETTINGS,
    MemoryWatch,
    assert_json_refusal,
    b64,
    content_types,
    json_values,
    pictures,
)

pytestmark = pytest.mark.slow

ERROR_KEYS = {"error"}


@pytest.fixture(scope="module")
def memory(serving_stack):
    session = requests.Session()
    for _ in range(20):
        session.post(
            f"{serving_stack.standin.rest_url}/v1/models/mnist:predict",
            json={"instances": [[[0.5] * 28] * 28]},
            timeout=10,
        )
    return MemoryWatch(lambda: {serving_stack.standin.process.pid}, serving_stack.standin.process.pid)


def digit_with(value) -> list:
    row = [0.0] * 28
    return [[value] + row[1:]] + [row] * 27


instances = st.one_of(
    st.just([[[0.0] * 28] * 28]),
    json_values.map(lambda v: [digit_with(v)]),
    st.integers(0, 70).map(lambda n: [[[0.1] * 28] * 28] * n),
    st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=30), max_size=30).map(lambda r: [r]),
    st.lists(pictures().map(lambda data: {"b64": b64(data)}), min_size=1, max_size=3),
    st.lists(st.fixed_dictionaries({"image_bytes": pictures().map(lambda d: {"b64": b64(d)})}), min_size=1, max_size=2),
    st.lists(st.dictionaries(st.sampled_from(["images", "image_bytes", "other"]), json_values, max_size=2), max_size=3),
    json_values,
)
documents = st.one_of(
    st.fixed_dictionaries(
        {"instances": instances},
        optional={
            "signature_name": st.sampled_from(["", "serving_default", "predict_image_bytes", "nope"]) | json_values
        },
    ),
    st.fixed_dictionaries(
        {
            "inputs": st.one_of(
                instances, st.dictionaries(st.sampled_from(["images", "image_bytes"]), instances, max_size=2)
            )
        },
        optional={"signature_name": st.sampled_from(["predict_image_bytes", "x"])},
    ),
    st.dictionaries(st.sampled_from(["instances", "inputs", "signature_name", "b64"]), json_values, max_size=3),
    json_values,
)
model_paths = st.one_of(
    st.just("/v1/models/mnist"),
    st.integers(-3, 2**70).map(lambda v: f"/v1/models/mnist/versions/{v}"),
    st.text(max_size=12).map(lambda label: f"/v1/models/mnist/labels/{urllib.parse.quote(label, safe='')}"),
    st.text(max_size=12).map(lambda name: f"/v1/models/{urllib.parse.quote(name, safe='')}"),
)


def test_predict_with_any_document(stack, memory):
    session, tried = requests.Session(), []

    @FUZZ_SETTINGS
    @given(
        path=model_paths, verb=st.sampled_from([":predict", ":classify", ":regress", ":nope", ""]), document=documents
    )
    def fuzz(path, verb, document):
        tried.append(document)
        response = session.post(
            f"{stack.standin.rest_url}{path}{verb}",
            data=json.dumps(document),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert_json_refusal(response, ERROR_KEYS)

    fuzz()
    record(
        "fuzz",
        "model server REST POST :predict/:classify/:regress, JSON documents (hypothesis)",
        inputs_tried=len(tried),
        max_examples=EXAMPLES_PER_TARGET,
    )


def test_predict_with_any_bytes_and_content_type(stack, memory):
    session, tried = requests.Session(), []

    @FUZZ_SETTINGS
    @given(body=st.binary(max_size=400), content_type=content_types)
    def fuzz(body, content_type):
        tried.append(body)
        response = session.post(
            f"{stack.standin.rest_url}/v1/models/mnist:predict",
            data=body,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        assert_json_refusal(response, ERROR_KEYS)

    fuzz()
    record(
        "fuzz",
        "model server REST POST :predict, raw bytes x content types (hypothesis)",
        inputs_tried=len(tried),
        max_examples=EXAMPLES_PER_TARGET,
    )


def test_any_path_and_method(stack, memory):
    session, tried = requests.Session(), []
    segments = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=0, max_size=12)

    @FUZZ_SETTINGS
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
        path=st.one_of(
            model_paths.map(lambda p: p + "/metadata"),
            model_paths,
            st.lists(segments, min_size=1, max_size=5).map(
                lambda parts: "/" + "/".join(urllib.parse.quote(p) for p in parts)
            ),
        ),
    )
    def fuzz(method, path):
        tried.append((method, path))
        response = session.request(method, f"{stack.standin.rest_url}{path}", timeout=30)
        assert_json_refusal(response, ERROR_KEYS)

    fuzz()
    record(
        "fuzz",
        "model server REST any path and method (hypothesis)",
        inputs_tried=len(tried),
        max_examples=EXAMPLES_PER_TARGET,
    )


def test_the_model_server_stayed_up_with_bounded_memory(memory):
    growth = memory.check()
    record(
        "fuzz",
        "model server memory over all fuzzing",
        rss_growth_mib=round(growth / 2**20, 1),
        bound_mib=64,
        same_processes=True,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/mnist%0A",
        "/v1/models/mnist%0A:predict",
        "/v1/models/%00",
        "/v1/models/%C3%28/metadata",
        "/v1/%0D%0Amodels",
    ],
)
def test_paths_with_encoded_control_characters_get_json_errors(stack, path):
    # Found by the path fuzzing above: an encoded newline escaped the catch-all route.
    for method in ("GET", "POST"):
        response = requests.request(method, f"{stack.standin.rest_url}{path}", data=b"{}", timeout=30)
        assert_json_refusal(response, ERROR_KEYS)
        assert response.status_code in (400, 404)
