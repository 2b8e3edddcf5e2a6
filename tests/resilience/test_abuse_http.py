"""The web UI's HTTP layer against clumsy and hostile clients, over real sockets to gunicorn:
trickled bodies, chunked bodies over the limit, broken framing, ambiguous lengths, bare LF,
over-long heads, and the memory one image request may take."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time

import pytest
import requests
from PIL import Image, ImageDraw

from tests.resilience.figures import record
from tests.resilience.test_abuse import png_bomb
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

DIGIT_BODY = b'{"pixels": [' + b"0.0," * 783 + b"0.0]}"
CLIENT_TIMEOUT_S = 5  # WEB_CLIENT_TIMEOUT of the test stack (the default)
AT_ONCE_S = 1.0  # what "at once" means for a refusal the parser can make from the bytes it has
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "cache-control")


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1]) if lines[0].startswith("HTTP/1.1 ") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def exchange(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes, float]:
    """Send `request` as is, read until the server closes (or `timeout`): (status, headers, body, seconds)."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:  # the server answered and closed while the rest was still being sent
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except OSError:
            pass
    return (*parse_answer(answer), time.monotonic() - started)


def _complete(answer: bytes) -> bool:
    _, headers, body = parse_answer(answer)
    length = headers.get("content-length")
    return length is not None and len(body) >= int(length)


def assert_refusal(status, headers, body, expected: int) -> str:
    assert status == expected, (status, headers, body[:300])
    assert headers.get("content-type") == "application/json", headers
    for name in SECURITY_HEADERS:
        assert name in headers, (name, headers)
    document = json.loads(body)
    assert document["status"] == expected and isinstance(document["error"], str)
    assert "Traceback" not in document["error"]
    return document["error"]


def predict_head(extra: bytes = b"") -> bytes:
    return b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra


# ---------------------------------------------------------------------------- slow bodies ----

TRICKLERS = 6  # more than the stack's WEB_THREADS (4)
TRICKLE_INTERVAL_S = 1.0


class Trickler:
    """A connection that sends its body one byte per interval, until told to stop or cut."""

    def __init__(self, port: int, start: bytes, piece: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S * 3)
        self.sock.sendall(start)
        self.piece = piece
        self.stop = threading.Event()
        self.cut_after: float | None = None
        self.answer = b""
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop.wait(TRICKLE_INTERVAL_S):
                self.sock.sendall(self.piece)
        except OSError:  # the server closed the connection
            pass
        try:
            self.sock.settimeout(1)
            while chunk := self.sock.recv(4096):
                self.answer += chunk
        except OSError:
            pass
        self.cut_after = time.monotonic() - self.started


TRICKLES = {
    "chunked": (predict_head(b"Transfer-Encoding: chunked\r\n\r\n"), b"1\r\n \r\n"),
    "Expect: 100-continue, 1 MB declared": (
        predict_head(b"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"),
        b" ",
    ),
}


@pytest.mark.parametrize("kind", sorted(TRICKLES))
def test_normal_requests_succeed_while_slow_bodies_trickle(stack, kind):
    start, piece = TRICKLES[kind]
    tricklers = [Trickler(stack.web.port, start, piece) for _ in range(TRICKLERS)]
    try:
        outcomes, ready = [], []
        deadline = time.monotonic() + 3  # within the tricklers' deadline: they are all still in
        with requests.Session() as session:
            while time.monotonic() < deadline:
                try:
                    response = session.post(
                        f"{stack.web.url}/api/v1/predict",
                        data=DIGIT_BODY,
                        headers={"Content-Type": "application/json"},
                        timeout=2,
                    )
                    outcomes.append(response.status_code == 200)
                except requests.RequestException:
                    outcomes.append(False)
            ready.append(requests.get(f"{stack.web.url}/readyz", timeout=2).status_code == 200)
        for trickler in tricklers:
            trickler.thread.join(timeout=CLIENT_TIMEOUT_S * 3)
    finally:
        for trickler in tricklers:
            trickler.stop.set()
            trickler.sock.close()
    cuts = [t.cut_after for t in tricklers]
    record(
        "abuse",
        f"web UI: normal predicts while {TRICKLERS} bodies trickle ({kind}), one byte a second",
        requests=len(outcomes),
        succeeded=sum(outcomes),
        readyz_ok=all(ready),
        slow_cut_after_seconds=max(c for c in cuts if c is not None) if any(cuts) else None,
    )
    assert outcomes and all(outcomes), f"{outcomes.count(False)} of {len(outcomes)} failed"
    assert all(ready)
    # The whole-request deadline, not a per-read one: each trickler was cut with a 408.
    assert all(c is not None and c < CLIENT_TIMEOUT_S + 3 for c in cuts), cuts
    for trickler in tricklers:
        final = trickler.answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")  # the interim answer
        assert_refusal(*parse_answer(final), 408)


# ---------------------------------------------------------------------- size and framing ----


def test_a_chunked_body_over_the_limit_gets_413(stack):
    piece = b"0" * 65536
    chunks = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(48)) + b"0\r\n\r\n"  # 3 MiB
    status, headers, body, seconds = exchange(
        stack.web.port, predict_head(b"Transfer-Encoding: chunked\r\n\r\n") + chunks
    )
    record("abuse", "web UI: 3 MiB chunked body", status=status, seconds=round(seconds, 2))
    assert "1048576 bytes" in assert_refusal(status, headers, body, 413)


def test_a_chunked_body_within_the_limit_is_served(stack):
    chunks = (
        b"".join(
            b"%x\r\n" % len(DIGIT_BODY[i : i + 500]) + DIGIT_BODY[i : i + 500] + b"\r\n"
            for i in range(0, len(DIGIT_BODY), 500)
        )
        + b"0\r\n\r\n"
    )
    status, _, body, _ = exchange(
        stack.web.port, predict_head(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n") + chunks
    )
    assert status == 200 and "prediction" in json.loads(body)


MALFORMED = {
    "chunk size not hex": predict_head(b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    "chunk without its CRLF": predict_head(b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n"),
    "duplicate Content-Length": predict_head(b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"),
    "Content-Length and chunked": predict_head(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "bare LF line endings": b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n",
    "bare LF after a header": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_framing_gets_400_at_once(stack, case):
    log_before = len(stack.web.log_tail(100000))
    status, headers, body, seconds = exchange(stack.web.port, MALFORMED[case])
    record("abuse", f"web UI: {case}", status=status, seconds=round(seconds, 2))
    assert_refusal(status, headers, body, 400)
    assert seconds < AT_ONCE_S
    assert "Traceback" not in stack.web.log_tail(100000)[log_before:]


def test_an_over_long_request_target_gets_414(stack):
    status, headers, body, _ = exchange(stack.web.port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_refusal(status, headers, body, 414)


def test_an_over_long_head_gets_431(stack):
    status, headers, body, _ = exchange(
        stack.web.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"
    )
    assert_refusal(status, headers, body, 431)


def test_a_timed_out_request_gets_408_with_the_headers(stack):
    status, headers, body, seconds = exchange(stack.web.port, predict_head(b"Content-Length: 100\r\n\r\n{"))
    assert_refusal(status, headers, body, 408)
    assert CLIENT_TIMEOUT_S - 0.5 < seconds < CLIENT_TIMEOUT_S + 3


def test_the_servers_own_413_carries_the_headers(stack):
    status, headers, body, _ = exchange(stack.web.port, predict_head(b"Content-Length: 10000000000\r\n\r\n{"))
    assert_refusal(status, headers, body, 413)


# ----------------------------------------------------------------------- image memory ------


def worker_pid(stack) -> int:
    import psutil

    children = psutil.Process(stack.web.process.pid).children()
    assert len(children) == 1, children  # the stack runs one worker
    return children[0].pid


def peak_growth_bytes(pid: int, send) -> tuple[object, int]:
    """What `send()` returned, and how far the process's peak RSS rose above its RSS before."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak (VmHWM) to the current RSS
    before = _status_kib(pid, "VmRSS")
    result = send()
    return result, (_status_kib(pid, "VmHWM") - before) * 1024


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def largest_accepted_picture() -> bytes:
    """The largest picture the API accepts: 4096 x 4096 RGBA, a stroke on transparency (a canvas
    export); RGBA is the mode that costs most once decoded."""
    from mnist_common import preprocessing as pp

    side = pp.MAX_SIDE
    picture = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(picture).line(
        [(side // 3, side // 5), (side // 2, 4 * side // 5)], fill=(0, 0, 0, 255), width=side // 25
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_long_thin_picture_is_refused_without_decoding(stack):
    picture = png_bomb(16_777_216, 1)  # 16 M pixels: within the area cap, not the side
    pid = worker_pid(stack)
    response, growth = peak_growth_bytes(
        pid,
        lambda: requests.post(
            f"{stack.web.url}/api/v1/predict", json={"image": base64.b64encode(picture).decode()}, timeout=30
        ),
    )
    record(
        "abuse",
        "web UI: PNG of 16,777,216 x 1 pixels",
        status=response.status_code,
        png_kib=len(picture) // 1024,
        peak_rss_growth_mib=round(growth / 2**20, 1),
    )
    assert response.status_code == 413, response.text[:300]
    assert growth < 20 << 20


# The bound the README states for one image request (the largest accepted picture).
IMAGE_REQUEST_PEAK_BOUND = 160 << 20


def test_peak_memory_of_the_largest_accepted_picture_is_bounded(stack):
    picture = largest_accepted_picture()
    pid = worker_pid(stack)
    requests.post(f"{stack.web.url}/api/v1/predict", json={"pixels": [0.0] * 784}, timeout=30)  # warm
    response, growth = peak_growth_bytes(
        pid,
        lambda: requests.post(
            f"{stack.web.url}/api/v1/predict", json={"image": base64.b64encode(picture).decode()}, timeout=60
        ),
    )
    record(
        "abuse",
        "web UI: peak memory of one 4096x4096 RGBA PNG request",
        status=response.status_code,
        png_kib=len(picture) // 1024,
        peak_rss_growth_mib=round(growth / 2**20, 1),
        bound_mib=IMAGE_REQUEST_PEAK_BOUND >> 20,
    )
    assert response.status_code == 200, response.text[:300]
    assert growth < IMAGE_REQUEST_PEAK_BOUND


def test_the_web_ui_still_answers_after_all_this(stack):
    wait_for(lambda: requests.get(f"{stack.web.url}/healthz", timeout=5).ok, 10, "the web UI")
    assert requests.post(f"{stack.web.url}/api/v1/predict", json={"pixels": [0.0] * 784}, timeout=10).ok
    assert os.path.exists(stack.web.log_path)


def test_an_upgrade_offer_is_answered_as_http_1_1(stack):
    # curl --http2 on plain HTTP offers h2c; the server does not take it up and answers normally.
    status, _, body, _ = exchange(
        stack.web.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    )
    assert status == 200 and json.loads(body) == {"status": "ok"}


# ------------------------------------------------- methods, targets and upgrades (round three) ----

ODD_REQUESTS = {
    "CONNECT host:port": (b"CONNECT x:1 HTTP/1.1\r\n\r\n", 405),
    "CONNECT with a Host": (b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", 405),
    "a target that is not a path": (b"GET x:1 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "an absolute URI with a bad port": (b"GET http://x:99999999999/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
}


@pytest.mark.parametrize("case", sorted(ODD_REQUESTS))
def test_odd_methods_and_targets_are_answered_at_once_without_a_traceback(stack, case):
    request, expected = ODD_REQUESTS[case]
    log_before = len(stack.web.log_tail(100000))
    status, headers, body, seconds = exchange(stack.web.port, request)
    record("abuse", f"web UI: {case}", status=status, seconds=round(seconds, 2))
    assert_refusal(status, headers, body, expected)
    assert seconds < AT_ONCE_S
    logged = stack.web.log_tail(100000)[log_before:]
    assert "Traceback" not in logged and "Fatal error" not in logged, logged[-2000:]


def test_a_websocket_upgrade_is_answered_as_http_1_1_at_once(stack):
    status, _, body, seconds = exchange(
        stack.web.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    record("abuse", "web UI: WebSocket upgrade", status=status, seconds=round(seconds, 2))
    # No WebSocket route: not switched (101), answered at once (werkzeug's 400 for an upgrade to
    # a route that is not a WebSocket one, in the app's error format).
    assert status in (200, 400) and seconds < AT_ONCE_S, (status, body[:200])


def test_a_chunk_extension_counts_towards_the_body_limit(stack):
    """200 MB of chunk extension carries no body byte: refused once the request's bytes pass the
    limit, long before the client could send it all (it got 200 at the deadline before)."""
    sent, answer = 0, b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", stack.web.port), timeout=30) as sock:
        sock.sendall(predict_head(b"Transfer-Encoding: chunked\r\n\r\n2;a="))
        try:
            while sent < 200 << 20:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    seconds = time.monotonic() - started
    status, headers, body = parse_answer(answer)
    record("abuse", "web UI: 200 MB chunk extension", status=status, seconds=round(seconds, 2), bytes_taken=sent)
    assert_refusal(status, headers, body, 413)
    assert sent < 16 << 20


def test_expect_100_continue_over_the_limit_gets_413_at_once(stack):
    status, headers, body, seconds = exchange(
        stack.web.port, predict_head(b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
    )
    record("abuse", "web UI: Expect: 100-continue, 99,999,999 bytes declared", status=status, seconds=round(seconds, 2))
    assert_refusal(status, headers, body, 413)
    assert seconds < AT_ONCE_S


def test_the_model_servers_rest_refuses_expect_100_continue_over_the_limit_at_once(stack):
    port = int(stack.standin.rest_url.rsplit(":", 1)[1])
    status, headers, body, seconds = exchange(
        port,
        b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n",
    )
    record(
        "abuse",
        "model server REST: Expect: 100-continue, 99,999,999 bytes declared",
        status=status,
        seconds=round(seconds, 2),
    )
    assert status == 413 and "error" in json.loads(body) and "server" not in headers
    assert seconds < AT_ONCE_S + 1.5  # the answer at once, then aiohttp lingers 1 s before closing
