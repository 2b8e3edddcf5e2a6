"""The app's JSON answers, written by orjson: the values the standard library would write, the
same compact and sorted form, and the standard library itself wherever orjson would differ."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from flask.json.provider import DefaultJSONProvider

from mnist_webui.json_provider import OrjsonProvider
from tests.web_ui.test_webui_api import VALID_PIXELS, post


@dataclasses.dataclass
class Point:
    x: int
    y: int


def standard(obj, **kwargs) -> str:
    """What Flask's own provider writes outside debug mode."""
    kwargs.setdefault("separators", (",", ":"))
    return json.dumps(obj, sort_keys=True, ensure_ascii=True, **kwargs)


def test_a_prediction_is_compact_sorted_json_with_the_standard_librarys_values(client):
    response = post(client, {"pixels": VALID_PIXELS})
    assert response.status_code == 200 and response.mimetype == "application/json"
    text = response.data.decode()
    answer = json.loads(text)
    assert text == standard(answer) + "\n"  # no float in this answer is spelled differently
    assert list(answer) == sorted(answer) and " " not in text


def test_an_error_reason_keeps_non_ascii_text(client):
    response = post(client, {"pixels": VALID_PIXELS, "ünïcode": 1})
    assert response.status_code == 400
    assert "ünïcode" in json.loads(response.data.decode("utf-8"))["error"]


@pytest.fixture
def provider(app) -> OrjsonProvider:
    assert isinstance(app.json, OrjsonProvider)
    return app.json


@pytest.mark.parametrize(
    "obj",
    [
        {"b": [1, 2.5, None, True], "a": {"z": "x", "y": []}},
        [0.1, 1e16, 123456.789, -0.0, 2**63 - 1],
        'text with "quotes", a backslash \\ and a tab\t',
    ],
)
def test_orjson_writes_the_same_values(provider, obj):
    assert json.loads(provider.dumps(obj, separators=(",", ":"))) == json.loads(standard(obj))


@pytest.mark.parametrize(
    "obj",
    [
        {2: "b", 1: "a"},  # keys that are not strings: the standard library makes them strings
        "lone surrogate \ud800",  # orjson refuses it; the standard library escapes it
        2**70,  # beyond 64 bits
        {"at": datetime.datetime(2026, 12, 4, 1, 2, 3)},  # Flask writes an HTTP date, orjson ISO 8601
        {"on": datetime.date(2026, 12, 4)},
        {"point": Point(1, 2)},  # a dataclass
    ],
)
def test_what_orjson_cannot_write_alike_is_left_to_the_standard_library(app, provider, obj):
    expected = DefaultJSONProvider(app).dumps(obj, separators=(",", ":"))
    assert provider.dumps(obj, separators=(",", ":")) == expected


def test_debug_output_stays_indented(provider):
    obj = {"b": 1, "a": [1, 2]}
    assert provider.dumps(obj, indent=2) == json.dumps(obj, indent=2, sort_keys=True)


def test_unsorted_output_is_left_to_the_standard_library(app):
    provider = OrjsonProvider(app)
    provider.sort_keys = False
    assert provider.dumps({"b": 1, "a": 2}, separators=(",", ":")) == '{"b":1,"a":2}'
