"""Hostile requests to both HTTP servers (the web UI under gunicorn, the model server's REST
API): oversized bodies, deeply nested JSON, decompression bombs, wrong content types and slow
clients are each refused within a bound, and the server keeps answering everyone else."""

from __future__ import annotations

import base64
import socket
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.resilience.figures import record
from tests.resilience.resilience_support import tree_rss_bytes

pytestmark = pytest.mark.slow

REFUSAL_BOUND_S = 5  # every refusal below arrives within this
OTHERS_BOUND_S = 3  # a normal request while abusive ones are in progress


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid greyscale PNG of zeros: tiny on the wire, width*height bytes once decoded.

    Written row by row through zlib, so the test itself never holds the decoded image. With
    `rows`, only that many rows of data follow a header that still claims `height`.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, row = zlib.compressobj(9), b"\0" * (width + 1)  # filter byte + pixels
    data = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    # 25 Mpixels, over the web UI's 16 Mpixel limit, in 25 KB; the mechanism is the same at any size.
    return {"5000x5000 zeros": png_bomb(5000, 5000), "header claims 100000x100000": png_bomb(100000, 100000, rows=1)}


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def refused(response, statuses, error_keys=("error",)) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    document = response.json()
    assert all(isinstance(document.get(key), (str, int)) for key in error_keys), document
    assert "Traceback" not in response.text


# ------------------------------------------------------------------------------------ web UI ----


def test_web_ui_refuses_an_oversized_body(stack):
    response, seconds = timed(
        lambda: requests.post(
            f"{stack.web.url}/api/v1/predict",
            data=b"[" + b"0," * (3 << 20),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
    )
    record("abuse", "web UI: 6 MiB body", status=response.status_code, seconds=round(seconds, 2))
    refused(response, {413}, ("error", "status"))
    assert seconds < REFUSAL_BOUND_S


def test_web_ui_refuses_a_huge_declared_length_without_waiting_for_it(stack):
    with socket.create_connection(("127.0.0.1", stack.web.port), timeout=REFUSAL_BOUND_S) as sock:
        sock.sendall(
            b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000000\r\n\r\n{"
        )
        started = time.monotonic()
        answer = sock.recv(4096)
        seconds = time.monotonic() - started
    record(
        "abuse",
        "web UI: Content-Length 10 GB, body never sent",
        status=answer.split(b" ", 2)[1].decode(),
        seconds=round(seconds, 2),
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


@pytest.mark.parametrize("nested", [b"[" * 100000 + b"]" * 100000, b'{"pixels":' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_web_ui_refuses_deeply_nested_json(stack, nested):
    response, seconds = timed(
        lambda: requests.post(
            f"{stack.web.url}/api/v1/predict", data=nested, headers={"Content-Type": "application/json"}, timeout=30
        )
    )
    where = "in 'pixels'" if nested.startswith(b"{") else "at the top level"
    record(
        "abuse",
        f"web UI: JSON nested {nested.count(b'[')} deep {where}",
        status=response.status_code,
        seconds=round(seconds, 2),
    )
    refused(response, {400}, ("error", "status"))
    assert seconds < REFUSAL_BOUND_S


@pytest.mark.parametrize("kind", ["5000x5000 zeros", "header claims 100000x100000"])
def test_web_ui_refuses_decompression_bombs_from_the_header(stack, bombs, kind):
    before = tree_rss_bytes(stack.web.process.pid)
    body = {"image": base64.b64encode(bombs[kind]).decode()}
    response, seconds = timed(lambda: requests.post(f"{stack.web.url}/api/v1/predict", json=body, timeout=30))
    growth = tree_rss_bytes(stack.web.process.pid) - before
    record(
        "abuse",
        f"web UI: PNG bomb, {kind}",
        status=response.status_code,
        seconds=round(seconds, 2),
        rss_growth_mib=round(growth / 2**20, 1),
    )
    refused(response, {413}, ("error", "status"))
    assert seconds < REFUSAL_BOUND_S
    assert growth < 20 << 20  # never decoded: 25 MB of pixels would show


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "image/png", ""],
)
def test_web_ui_refuses_wrong_content_types(stack, content_type):
    response = requests.post(
        f"{stack.web.url}/api/v1/predict", data=b'{"pixels": []}', headers={"Content-Type": content_type}, timeout=30
    )
    refused(response, {415}, ("error", "status"))


# ------------------------------------------------------------------------------ model server ----


def predict_url(stack) -> str:
    return f"{stack.standin.rest_url}/v1/models/mnist:predict"


def test_model_server_refuses_an_oversized_body(stack):
    response, seconds = timed(
        lambda: requests.post(
            predict_url(stack), data=b"[" + b"0," * (3 << 20), headers={"Content-Type": "application/json"}, timeout=30
        )
    )
    record("abuse", "model server: 6 MiB body", status=response.status_code, seconds=round(seconds, 2))
    refused(response, {413})
    assert seconds < REFUSAL_BOUND_S


@pytest.mark.parametrize(
    "nested",
    [
        b"[" * 100000 + b"]" * 100000,
        b'{"instances":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"[" * 1000 + b"]" * 1000,
        b'{"instances":' + b"[" * 1000 + b"]" * 1000 + b"}",
    ],
)
def test_model_server_refuses_deeply_nested_json(stack, nested):
    response, seconds = timed(
        lambda: requests.post(predict_url(stack), data=nested, headers={"Content-Type": "application/json"}, timeout=30)
    )
    where = "in 'instances'" if nested.startswith(b"{") else "at the top level"
    record(
        "abuse",
        f"model server: JSON nested {nested.count(b'[')} deep {where}",
        status=response.status_code,
        seconds=round(seconds, 2),
    )
    refused(response, {400})
    assert seconds < REFUSAL_BOUND_S


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
def test_model_server_answers_any_content_type_as_tf_serving_does(stack, content_type):
    # TF Serving reads the body as JSON whatever the header says; a JSON body works, others are 400.
    good = requests.post(
        predict_url(stack),
        data=b'{"instances": [[' + b",".join([b"[" + b",".join([b"0"] * 28) + b"]"] * 28) + b"]]}",
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert good.status_code == 200, good.text[:200]
    bad = requests.post(
        predict_url(stack), data=b"\x89PNG not json", headers={"Content-Type": content_type}, timeout=30
    )
    refused(bad, {400})


@pytest.mark.parametrize("kind", ["5000x5000 zeros", "header claims 100000x100000"])
def test_model_server_refuses_a_decompression_bomb_within_a_bound(stack, bombs, kind):
    # The exported predict_image_bytes signature reads the size from the header before decoding.
    before = tree_rss_bytes(stack.standin.process.pid)
    body = {"signature_name": "predict_image_bytes", "instances": [{"b64": base64.b64encode(bombs[kind]).decode()}]}
    response, seconds = timed(lambda: requests.post(predict_url(stack), json=body, timeout=60))
    growth = tree_rss_bytes(stack.standin.process.pid) - before
    record(
        "abuse",
        f"model server: PNG bomb, {kind}, through predict_image_bytes",
        status=response.status_code,
        seconds=round(seconds, 2),
        rss_growth_mib=round(growth / 2**20, 1),
    )
    refused(response, {400})
    assert "pixels" in response.json()["error"]
    assert seconds < REFUSAL_BOUND_S
    assert growth < 20 << 20


# ------------------------------------------------------------------------------ slow clients ----

SLOW_CLIENTS = 6  # more than the web UI's WEB_THREADS (4) in the test stack
SLOW_CUT_BOUND_S = 10  # both servers give a client 5 s (WEB_CLIENT_TIMEOUT, --client_timeout_seconds)
DIGIT_BODY = b'{"pixels": [' + b"0.0," * 783 + b"0.0]}"
# Each a request started and then left unfinished: the head cut off in a header (slowloris), or
# a complete head whose declared body never fully arrives.
SLOW_STARTS = {
    "head": lambda path: b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    "body": lambda path: (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(DIGIT_BODY) + DIGIT_BODY[:10]
    ),
}


def open_slow_clients(port: int, start: bytes, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=SLOW_CUT_BOUND_S)
        sock.sendall(start)
        clients.append(sock)
    return clients


def others_served_while_slow(url: str, port: int, start: bytes) -> float | None:
    """Seconds to serve a normal request while SLOW_CLIENTS connections hang; None if not served."""
    clients = open_slow_clients(port, start, SLOW_CLIENTS)
    try:
        time.sleep(0.5)
        started = time.monotonic()
        try:
            ok = requests.get(url, timeout=OTHERS_BOUND_S * 2).status_code == 200
        except requests.RequestException:
            ok = False
        return time.monotonic() - started if ok else None
    finally:
        for sock in clients:
            sock.close()


def cut_after(sock: socket.socket) -> tuple[float | None, bytes]:
    """Seconds until the server closed the slow connection (None if not within the bound), and
    what it answered before closing."""
    started, answer = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
        return time.monotonic() - started, answer
    except ConnectionResetError:  # closed with the rest of the request unread: a reset, still a cut
        return time.monotonic() - started, answer
    except OSError:  # the bound passed (socket timeout)
        return None, answer
    finally:
        sock.close()


def servers(stack) -> dict[str, tuple[str, int, bytes]]:
    """name: (URL of a cheap GET, port, path a slow client posts to)."""
    return {
        "web UI": (f"{stack.web.url}/healthz", stack.web.port, b"/api/v1/predict"),
        "model server": (
            f"{stack.standin.rest_url}/v1/models/mnist",
            stack.standin.rest_port,
            b"/v1/models/mnist:predict",
        ),
    }


@pytest.mark.parametrize("server", ["web UI", "model server"])
@pytest.mark.parametrize("part", sorted(SLOW_STARTS))
def test_others_are_served_while_slow_clients_hold_connections(stack, server, part):
    url, port, path = servers(stack)[server]
    served_in = others_served_while_slow(url, port, SLOW_STARTS[part](path))
    record(
        "abuse",
        f"{server}: {SLOW_CLIENTS} connections stalled in the {part}, another request served",
        seconds=served_in and round(served_in, 3),
    )
    assert served_in is not None and served_in < OTHERS_BOUND_S


@pytest.mark.parametrize("part", sorted(SLOW_STARTS))
def test_a_slow_client_is_cut_within_a_bound(stack, part):
    clients = {
        name: open_slow_clients(port, SLOW_STARTS[part](path), 1)[0] for name, (_, port, path) in servers(stack).items()
    }
    with ThreadPoolExecutor(len(clients)) as pool:  # all waits at once: the bound is spent once
        results = dict(zip(clients, pool.map(cut_after, clients.values()), strict=False))
    for server, (cut, _answer) in results.items():
        record(
            "abuse",
            f"{server}: one connection stalled in the {part} cut",
            seconds=cut and round(cut, 2),
            bound_seconds=SLOW_CUT_BOUND_S,
        )
    assert all(cut is not None for cut, _ in results.values()), results
    for server, (_, answer) in results.items():
        if part == "body" or server == "web UI":  # aiohttp closes a half-sent head without a word
            assert answer.startswith(b"HTTP/1.1 408 "), (server, answer[:200])
            assert b'"error"' in answer, (server, answer)


def test_a_request_sent_in_pieces_is_served(stack):
    """The web UI reads a request whole before a thread takes it: pieces with pauses still make
    one request, and a client that waits for "100 Continue" (as curl does) gets it."""
    head = (
        b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(DIGIT_BODY)
    )
    with socket.create_connection(("127.0.0.1", stack.web.port), timeout=SLOW_CUT_BOUND_S) as sock:
        for piece in (head[:20], head[20:], b"\r\n", DIGIT_BODY[:100], DIGIT_BODY[100:]):
            sock.sendall(piece)
            time.sleep(0.2)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    with socket.create_connection(("127.0.0.1", stack.web.port), timeout=SLOW_CUT_BOUND_S) as sock:
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(DIGIT_BODY)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")


def test_both_servers_still_answer_after_the_abuse(stack):
    digit = {"pixels": [0.0] * 784}
    assert requests.post(f"{stack.web.url}/api/v1/predict", json=digit, timeout=10).status_code == 200
    assert requests.get(f"{stack.standin.rest_url}/v1/models/mnist", timeout=10).status_code == 200
