"""Property-based (hypothesis) and schema-driven (schemathesis) fuzzing of the live web UI:
gunicorn on loopback in front of the real model server. Never a 5xx, never a stack trace, always
a JSON reason; the same processes stay up and their memory stays bounded."""

from __future__ import annotations

import json
import urllib.parse

import psutil
import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

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

ERROR_KEYS = {"error", "status"}
SCHEMATHESIS_EXAMPLES = 60  # per API operation


def gunicorn_pids(web) -> set[int]:
    master = psutil.Process(web.process.pid)
    return {master.pid, *(child.pid for child in master.children(recursive=True))}


@pytest.fixture(scope="module")
def memory(serving_stack):
    """Started after a warm-up, so first-use caches do not count as growth."""
    session = requests.Session()
    for _ in range(20):
        session.post(f"{serving_stack.web.url}/api/v1/predict", json={"pixels": [0.5] * 784}, timeout=10)
        session.get(f"{serving_stack.web.url}/api/v1/sample", timeout=10)
    return MemoryWatch(lambda: gunicorn_pids(serving_stack.web), serving_stack.web.process.pid)


def a_digit_with_one_pixel(value) -> list:
    return [0.0] * 400 + [value] + [0.0] * 383


pixel_fields = st.one_of(
    st.lists(st.floats(min_value=-2, max_value=2, allow_nan=False), max_size=40),
    st.lists(st.lists(st.floats(0, 1), min_size=28, max_size=28), min_size=28, max_size=28),
    json_values.map(a_digit_with_one_pixel),
    st.integers(0, 900).map(lambda n: [0.25] * n),
    st.integers(0, 40).map(lambda n: [[0.5] * 28] * n),
    json_values,
)
image_fields = st.one_of(
    pictures().map(b64),
    pictures().map(lambda data: "data:image/png;base64," + b64(data)),
    st.binary(max_size=200).map(b64),
    st.text(max_size=60),
    st.sampled_from(["data:,", "data:image/png;base64", "data:image/png,abc", "====", "iVBORw0KGgo="]),
    json_values,
)
predict_bodies = st.one_of(
    st.fixed_dictionaries({"pixels": pixel_fields}),
    st.fixed_dictionaries({"image": image_fields}),
    st.dictionaries(st.sampled_from(["pixels", "image", "signature_name", "__proto__"]), json_values, max_size=3),
    json_values,
)


def test_predict_with_any_json_body(stack, memory):
    session, tried = requests.Session(), []

    @FUZZ_SETTINGS
    @given(body=predict_bodies)
    def fuzz(body):
        tried.append(body)
        response = session.post(
            f"{stack.web.url}/api/v1/predict",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert_json_refusal(response, ERROR_KEYS)
        if response.status_code == 200:
            assert 0 <= response.json()["prediction"] <= 9

    fuzz()
    record(
        "fuzz",
        "web UI POST /api/v1/predict, JSON bodies (hypothesis)",
        inputs_tried=len(tried),
        max_examples=EXAMPLES_PER_TARGET,
    )


def test_predict_with_any_bytes_and_content_type(stack, memory):
    session, tried = requests.Session(), []

    @FUZZ_SETTINGS
    @given(
        body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
        content_type=content_types,
    )
    def fuzz(body, content_type):
        tried.append(body)
        response = session.post(
            f"{stack.web.url}/api/v1/predict", data=body, headers={"Content-Type": content_type}, timeout=30
        )
        assert_json_refusal(response, ERROR_KEYS)

    fuzz()
    record(
        "fuzz",
        "web UI POST /api/v1/predict, raw bytes x content types (hypothesis)",
        inputs_tried=len(tried),
        max_examples=EXAMPLES_PER_TARGET,
    )


def test_any_api_path_method_and_query(stack, memory):
    session, tried = requests.Session(), []
    segments = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=12)

    @FUZZ_SETTINGS
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        path=st.lists(
            st.one_of(segments, st.sampled_from(["predict", "sample", "model", "..", "%2e%2e"])), min_size=1, max_size=3
        ).map("/".join),
        query=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
    )
    def fuzz(method, path, query):
        tried.append((method, path))
        response = session.request(
            method, f"{stack.web.url}/api/v1/{requests.utils.quote(path)}", params=query, timeout=30
        )
        # ".." segments are resolved by the client, so a path may climb out of /api/ to the page's
        # routes, whose refusals are HTML pages for browsers: there only "no 5xx" applies.
        left_the_api = not urllib.parse.urlsplit(response.request.url).path.startswith("/api/")
        if method == "HEAD" or left_the_api:  # no JSON body to read a reason from
            assert response.status_code < 500, response.status_code
        else:
            assert_json_refusal(response, ERROR_KEYS)

    fuzz()
    record(
        "fuzz",
        "web UI /api/v1/<any path>, any method and query (hypothesis)",
        inputs_tried=len(tried),
        max_examples=EXAMPLES_PER_TARGET,
    )


SCHEMATHESIS_TRIED: dict[str, int] = {}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_of_the_openapi_document(stack, memory, mode):
    """schemathesis drives every operation of /api/v1/openapi.json with data that fits the
    schema (positive) and data that breaks it (negative), and checks each answer against it."""
    schema = schemathesis.openapi.from_url(f"{stack.web.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6  # predict, sample, model, healthz, readyz, metrics
    session = requests.Session()
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # nothing to break in an operation without inputs
        name = f"{operation.method.upper()} {operation.path} ({mode.value})"
        SCHEMATHESIS_TRIED[name] = 0

        @settings(FUZZ_SETTINGS, max_examples=SCHEMATHESIS_EXAMPLES)
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            SCHEMATHESIS_TRIED[name] += 1  # noqa: B023 - fuzz() runs within this iteration
            response = case.call(session=session, timeout=30)
            # Schema-valid is not always meaningful: a base64 string that is no PNG, a picture
            # without ink. JSON Schema cannot say so, and refusing them is right.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            assert_json_refusal(response, ERROR_KEYS if operation.path.startswith("/api/") else {"error"})  # noqa: B023

        fuzz()


def test_the_web_ui_stayed_up_with_bounded_memory(memory):
    growth = memory.check()
    for operation, count in sorted(SCHEMATHESIS_TRIED.items()):
        record("fuzz", f"web UI {operation} (schemathesis, OpenAPI)", inputs_tried=count)
    record(
        "fuzz",
        "web UI gunicorn memory over all fuzzing",
        rss_growth_mib=round(growth / 2**20, 1),
        bound_mib=64,
        same_processes=True,
    )
