"""What an outside probe found in the app itself: label cardinality, the metrics content type, Host
in redirects, caching, and error bodies that quoted library internals."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import pytest

from mnist_common import preprocessing as pp

PIXELS = {"pixels": [0.0] * 784}


def png_of_zeros(width: int, height: int, rows: int | None = None) -> bytes:
    """A grey PNG of `width` x `height` zeros, compressed: tiny on the wire, large once decoded.
    With `rows`, only that many rows of data follow a header that still claims `height`."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = b"\0" * (min(width, 1 << 20) + 1)  # with `rows`, a short row: the header is what counts
    data = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def series(metrics_text: str, name: str) -> list[str]:
    return [line for line in metrics_text.splitlines() if line.startswith(name + "{")]


def test_junk_methods_do_not_grow_the_method_label(client):
    before = len(series(client.get("/metrics").data.decode(), "webui_http_requests_total"))
    for index in range(50):
        client.open("/", method=f"JUNK{index:03d}")
    text = client.get("/metrics").data.decode()
    methods = set(re.findall(r'method="([^"]*)"', text))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}, methods
    assert len(series(text, "webui_http_requests_total")) <= before + 3


def test_metrics_content_type_has_one_charset(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1, content_type
    assert content_type.startswith("text/plain")


def test_redirects_do_not_reflect_the_host_header(client):
    response = client.get("/static//app.css", headers={"Host": "evil.example"})
    assert response.status_code in (301, 308)
    location = response.headers["Location"]
    assert "evil.example" not in location and location.startswith("/") and not location.startswith("//")
    assert client.get(location).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/v1/sample",
        "/api/v1/model",
        "/readyz",
        "/healthz",
        "/metrics",
        "/no-such-page",
        "/api/v1/no-such-endpoint",
    ],
)
def test_dynamic_answers_are_not_stored_by_caches(client, path):
    assert client.get(path).headers.get("Cache-Control") == "no-store"


def test_predictions_and_refusals_are_not_stored(client):
    assert client.post("/api/v1/predict", json=PIXELS).headers["Cache-Control"] == "no-store"
    assert client.post("/api/v1/predict", data=b"{").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/api/v1/predict", PIXELS),
        ("POST", "/api/v1/predict", {"pixels": "no"}),
        ("GET", "/", None),
        ("GET", "/static/app.css", None),
        ("GET", "/no-such-page", None),
        ("DELETE", "/api/v1/predict", None),
    ],
)
def test_every_security_header_is_sent_exactly_once(client, method, path, body):
    response = client.open(path, method=method, json=body)
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
        assert len(response.headers.getlist(name)) == 1, (name, path)
    assert len(response.headers.getlist("Cache-Control")) == 1, path


def test_static_files_are_revalidated(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200 and "no-cache" in response.headers["Cache-Control"]


INTERNALS = ("recursion", "Expecting", "decompression bomb", "DOS attack", "PIL", "Traceback", "line 1 column")


@pytest.mark.parametrize(
    "body", [b"[" * 100000 + b"]" * 100000, b'{"pixels": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"pixels": [1, }']
)
def test_json_errors_are_in_the_apis_own_words(client, body):
    response = client.post("/api/v1/predict", data=body, content_type="application/json")
    assert response.status_code == 400
    reason = response.get_json()["error"]
    assert reason.startswith("the request body is not valid JSON")
    assert not any(word in reason for word in INTERNALS), reason


@pytest.mark.parametrize("width, height", [(100000, 100000), (16_777_216, 1), (1, 5000), (5000, 1)])
def test_image_size_errors_state_the_documented_bounds(client, width, height):
    picture = png_of_zeros(width, height, rows=1)
    response = client.post("/api/v1/predict", json={"image": base64.b64encode(picture).decode()})
    assert response.status_code == 413, response.data[:300]
    reason = response.get_json()["error"]
    assert f"{pp.DEFAULT_MAX_PIXELS} pixels" in reason and f"{pp.MAX_SIDE} pixels a side" in reason
    assert not any(word in reason for word in INTERNALS), reason


def test_a_corrupt_image_is_refused_in_the_apis_words(client, seven_png):
    truncated = seven_png[: len(seven_png) // 2]
    response = client.post("/api/v1/predict", json={"image": base64.b64encode(truncated).decode()})
    assert response.status_code == 415
    reason = response.get_json()["error"]
    assert "truncated or corrupt" in reason and "(" not in reason, reason


def test_long_thin_pictures_are_refused_from_the_header():
    # Within the area cap (16 M pixels), but a side far past MAX_SIDE: scaling it would cost GBs.
    with pytest.raises(pp.ImageTooLargeError, match="a side"):
        pp.decode_image(png_of_zeros(16_777_216, 1))
    with pytest.raises(pp.ImageTooLargeError, match="a side"):
        pp.decode_image(png_of_zeros(1, pp.MAX_SIDE + 1))


def test_large_accepted_pictures_are_worked_on_at_a_bounded_size():
    # The largest accepted picture: decoded, then reduced before the float steps.
    from PIL import Image, ImageDraw

    side = pp.MAX_SIDE
    picture = Image.new("L", (side, side), 255)
    ImageDraw.Draw(picture).line([(side // 4, side // 4), (side // 2, 3 * side // 4)], fill=0, width=side // 20)
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    grey = pp.decode_image(buffer.getvalue())
    assert max(grey.shape) <= pp.WORKING_SIDE
    digit = pp.to_mnist(grey)
    assert digit.shape == (28, 28) and digit.max() > 0.9


def test_a_burst_of_uploads_decodes_at_most_two_pictures_at_once_per_worker(monkeypatch):
    """A decode at the bounds costs up to ~160 MiB; a worker runs WEB_THREADS predictions at once,
    so pictures queue for IMAGE_DECODES_AT_ONCE slots instead of multiplying that by the threads."""
    import queue
    import threading

    import numpy as np

    from mnist_webui import validation

    entered: queue.Queue = queue.Queue()
    releases = {index: threading.Event() for index in range(4)}
    inside = []
    most_inside = []
    lock = threading.Lock()

    def blocking_decode(data: bytes, max_pixels: int) -> np.ndarray:
        index = data[0]
        with lock:
            inside.append(index)
            most_inside.append(len(inside))
        entered.put(index)
        assert releases[index].wait(10)
        with lock:
            inside.remove(index)
        return np.zeros((28, 28), dtype=np.float32)

    monkeypatch.setattr(validation.preprocessing, "preprocess_image_bytes", blocking_decode)
    assert validation.IMAGE_DECODES_AT_ONCE == 2
    threads = [
        threading.Thread(target=validation.image_to_mnist, args=(bytes([index]), 100), daemon=True)
        for index in range(4)
    ]
    for thread in threads:
        thread.start()
    first_two = {entered.get(timeout=10), entered.get(timeout=10)}
    assert entered.empty() and len(inside) == 2  # the other two wait for a slot
    releases[min(first_two)].set()
    third = entered.get(timeout=10)  # one slot freed: exactly one more enters
    assert third not in first_two
    for event in releases.values():
        event.set()
    for thread in threads:
        thread.join(10)
    assert max(most_inside) == 2 and not inside


def test_a_picture_that_cannot_get_a_decode_slot_in_time_is_told_to_retry(monkeypatch):
    """Decodes run in threads, where gunicorn's worker timeout never fires: a picture waits for a
    slot at most DECODE_SLOT_WAIT_SECONDS, then gets 503, and the slots are whole afterwards."""
    import threading

    import numpy as np

    from mnist_webui import validation
    from mnist_webui.errors import ApiError

    entered = threading.Semaphore(0)
    release = threading.Event()

    def blocking_decode(data: bytes, max_pixels: int) -> np.ndarray:
        entered.release()
        assert release.wait(30)
        return np.zeros((28, 28), dtype=np.float32)

    monkeypatch.setattr(validation.preprocessing, "preprocess_image_bytes", blocking_decode)
    monkeypatch.setattr(validation, "DECODE_SLOT_WAIT_SECONDS", 0.05)
    holders = [
        threading.Thread(target=validation.image_to_mnist, args=(b"x", 100), daemon=True)
        for _ in range(validation.IMAGE_DECODES_AT_ONCE)
    ]
    for holder in holders:
        holder.start()
    for _ in holders:
        assert entered.acquire(timeout=10)  # both slots are held now
    with pytest.raises(ApiError) as refused:
        validation.image_to_mnist(b"x", 100)
    assert refused.value.status == 503 and "retry" in str(refused.value)
    release.set()
    for holder in holders:
        holder.join(10)
    assert validation.image_to_mnist(b"x", 100).shape == (28, 28)  # the slots came back


@pytest.mark.parametrize("size", [(4096, 1), (2048, 1), (1, 1025)])
def test_long_thin_jpegs_get_a_client_error_not_a_500(client, size, caplog):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="JPEG")
    response = client.post("/api/v1/predict", json={"image": base64.b64encode(buffer.getvalue()).decode()})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert isinstance(response.get_json()["error"], str) and "Traceback" not in caplog.text


def test_decode_bombs_get_413_from_the_api(client):
    from tests.support import image_bombs

    for bomb in (image_bombs.jpeg_scan_bomb(2048, 2400), image_bombs.jpeg_marker_flood(100_000)):
        response = client.post("/api/v1/predict", json={"image": base64.b64encode(bomb).decode()})
        assert response.status_code == 413 and "JPEG" in response.get_json()["error"]
