"""Hypothesis strategies and checks shared by the fuzz tests of the two REST APIs."""

from __future__ import annotations

import base64
import io

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from tests.resilience.resilience_support import tree_rss_bytes

EXAMPLES_PER_TARGET = 150
# Deterministic and bounded: the same inputs on every run, no per-example deadline on a busy machine.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_TARGET,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
# Memory a server may gain over a whole fuzz run after warming up; a per-request leak of the
# bodies sent (up to hundreds of KiB each) would blow through it.
RSS_GROWTH_BOUND = 64 << 20

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=40,
)


@st.composite
def pictures(draw) -> bytes:
    """Small real PNG or JPEG pictures of any mode and size, or their bytes cut short."""
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "1", "P", "I;16"]))
    size = (draw(st.integers(1, 64)), draw(st.integers(1, 64)))
    image = Image.new(mode, size, color=draw(st.integers(0, 255)) if mode != "RGB" else (10, 200, 30))
    if draw(st.booleans()):
        image.paste(255 if mode != "RGB" else (255, 255, 255), (0, 0, max(1, size[0] // 2), max(1, size[1] // 2)))
    fmt = draw(st.sampled_from(["PNG", "JPEG"])) if mode in ("L", "RGB") else "PNG"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = buffer.getvalue()
    return data[: draw(st.integers(1, len(data)))] if draw(st.booleans()) else data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "image/png",
        "application/octet-stream",
        "",
        "application/json; charset=latin-1",
    ]
)


def assert_json_refusal(response: requests.Response, error_keys: set[str]) -> None:
    """Never a 5xx, never a stack trace; a refusal is JSON with a reason."""
    text = response.text
    assert response.status_code < 500, (response.status_code, text[:300])
    assert "Traceback" not in text and 'File "' not in text, text[:300]
    if response.status_code >= 400:
        document = response.json()
        assert isinstance(document, dict) and error_keys <= set(document), document
        assert isinstance(document["error"], str) and document["error"], document


class MemoryWatch:
    """RSS of a server process tree across a fuzz run, and that its processes stay the same."""

    def __init__(self, pids_of, root_pid: int):
        self.pids_of, self.root_pid = pids_of, root_pid
        self.pids = pids_of()
        self.before = tree_rss_bytes(root_pid)

    def check(self) -> int:
        growth = tree_rss_bytes(self.root_pid) - self.before
        assert self.pids_of() == self.pids, "a server process died or was replaced during fuzzing"
        assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth >> 20} MiB during fuzzing"
        return growth
