"""The stand-in against an outside probe's third round: tensors numpy cannot hold, empty batches,
malformed heads, chunk framing that carries no body, Expect: 100-continue over the limit,
cross-origin requests from web pages, idle HTTP/2 connections. Each is answered at once in the
API's JSON error shape (gRPC: a status with a reason), never with a traceback in the log or a
`Server:` header naming the stack."""

from __future__ import annotations

import socket
import time
import urllib.parse

import grpc
import pytest
import requests
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow

IDLE_S = 5  # --client_timeout_seconds of the test server (the default)


def _dims(*sizes: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in sizes])


def _predict(server, signature: str, key: str, tensor: tensor_pb2.TensorProto) -> grpc.RpcError:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = signature
    request.inputs[key].CopyFrom(tensor)
    with pytest.raises(grpc.RpcError) as raised:
        prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request, timeout=30)
    return raised.value


def _no_traceback_since(server, before: int) -> None:
    logged = server.log_text()[before:]
    assert "Traceback" not in logged and "Fatal error" not in logged, logged[-2000:]


@pytest.mark.parametrize("rank", [33, 65, 70, 254])
def test_a_tensor_of_too_many_dimensions_is_invalid_argument(standin_only, rank):
    before = len(standin_only.log_text())
    error = _predict(
        standin_only, "", "images", tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_dims(*[1] * rank))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert f"{rank} dimensions" in error.details()
    _no_traceback_since(standin_only, before)


@pytest.mark.parametrize(
    ("signature", "key", "dtype", "dims"),
    [
        ("", "images", types_pb2.DT_FLOAT, (0, 28, 28)),
        ("predict_image_bytes", "image_bytes", types_pb2.DT_STRING, (0,)),
    ],
)
def test_a_request_of_zero_rows_is_refused_in_the_apis_words(standin_only, signature, key, dtype, dims):
    error = _predict(standin_only, signature, key, tensor_pb2.TensorProto(dtype=dtype, tensor_shape=_dims(*dims)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "0 rows" in error.details() and "Incompatible shapes" not in error.details(), error.details()


# -------------------------------------------------------------------------------- REST wire ----


def _port(server) -> int:
    return urllib.parse.urlsplit(server.rest_url).port


def _exchange(port: int, request: bytes, timeout: float = 15) -> tuple[bytes, float]:
    """Send `request`, read until the server closes: (answer, seconds)."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer, time.monotonic() - started


def _head_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


MALFORMED_HEADS = {
    "space in a header name": b"GET /v1/models/mnist HTTP/1.1\r\nHo st: x\r\n\r\n",
    "bytes that are not a method": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 /v1 HTTP/1.1\r\n\r\n",
    "CONNECT": b"CONNECT x:1 HTTP/1.1\r\n\r\n",
    "bad chunk size": b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "control byte in a header": b"GET /v1/models/mnist HTTP/1.1\r\nHost: x\x01y\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED_HEADS))
def test_a_malformed_head_gets_a_json_400_without_echo_or_traceback(standin_only, case):
    before = len(standin_only.log_text())
    answer, seconds = _exchange(_port(standin_only), MALFORMED_HEADS[case])
    status, headers, body = _head_and_body(answer)
    assert status == 400, answer[:300]
    assert headers.get("content-type") == "application/json" and "server" not in headers, headers
    document = requests.models.complexjson.loads(body)
    assert set(document) == {"error"} and "Malformed" in document["error"]
    assert b"Ho st" not in body and b"\\x" not in body  # the raw bytes are not echoed
    _no_traceback_since(standin_only, before)
    assert len(standin_only.log_text()) - before < 300  # one short line at most


def test_no_answer_names_the_servers_stack(standin_only):
    answers = [
        requests.get(standin_only.model_url(), timeout=10),
        requests.get(f"{standin_only.rest_url}/nothing", timeout=10),
        requests.post(standin_only.model_url(":predict"), json={"instances": [[1.0]]}, timeout=10),
        requests.post(standin_only.model_url(":predict"), data=b"x" * (5 << 20), timeout=30),
    ]
    assert [a.status_code for a in answers] == [200, 404, 400, 413]
    for answer in answers:
        assert "Server" not in answer.headers, answer.headers


@pytest.mark.parametrize("where", ["chunk extension", "trailer"])
def test_chunk_framing_counts_towards_the_request_limit(standin_only, where):
    """200 MB of chunk extension (or trailer) carries no body byte; it is refused once the
    request's bytes pass the limit, long before the client could send it all."""
    head = b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    start = b"2;a=" if where == "chunk extension" else b"2\r\n{}\r\n0\r\nX-Pad: "
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", _port(standin_only)), timeout=30) as sock:
        sock.sendall(head + start)
        try:
            while sent < 200 << 20:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:  # the server answered and closed
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    status, headers, body = _head_and_body(answer)
    assert answer.count(b"HTTP/1.") == 1, answer[:600]  # one answer, then the connection closes
    # A trailer line is also over aiohttp's line limit (a 400); a chunk extension is only counted.
    assert status in ((413,) if where == "chunk extension" else (400, 413)), answer[:300]
    assert headers.get("content-type") == "application/json"
    assert set(requests.models.complexjson.loads(body)) == {"error"}
    assert sent < 32 << 20, f"{sent} bytes were taken before the refusal"


def test_expect_100_continue_over_the_limit_gets_413_and_no_invitation(standin_only):
    answer, _ = _exchange(
        _port(standin_only),
        b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 Continue" not in answer
    assert "larger than the limit" in requests.models.complexjson.loads(_head_and_body(answer)[2])["error"]


def test_expect_100_continue_within_the_limit_is_invited_and_served(standin_only):
    body = (
        b'{"instances": [' + b",".join([b"[" + b",".join([b"[" + b",".join([b"0"] * 28) + b"]"] * 28) + b"]"]) + b"]}"
    )
    with socket.create_connection(("127.0.0.1", _port(standin_only)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_a_request_from_a_web_page_of_another_origin_is_refused(standin_only, origin):
    # A "simple" cross-origin request (text/plain) needs no preflight: a browser sends it as is.
    answer = requests.post(
        standin_only.model_url(":predict"),
        data=b'{"instances": [[1.0]]}',
        headers={"Origin": origin, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert answer.status_code == 403 and "origin" in answer.json()["error"]
    assert requests.get(standin_only.model_url(), headers={"Origin": origin}, timeout=10).status_code == 403
    assert requests.get(standin_only.model_url(), timeout=10).status_code == 200  # no Origin: not a browser


# -------------------------------------------------------------------------------- gRPC wire ----


def _closed_within(sock: socket.socket, bound: float) -> float | None:
    """Seconds until the server closed the connection, or None if it did not within `bound`."""
    started = time.monotonic()
    sock.settimeout(bound)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


def test_idle_grpc_connections_are_closed_like_the_http_ports(standin_only):
    address = standin_only.grpc_target.rsplit(":", 1)
    # A connection that never starts HTTP/2, and one that did and then sent nothing more.
    silent = socket.create_connection((address[0], int(address[1])))
    idle = socket.create_connection((address[0], int(address[1])))
    idle.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # preface + SETTINGS
    try:
        assert _closed_within(silent, IDLE_S * 4) is not None, "a connection that said nothing stayed open"
        assert _closed_within(idle, IDLE_S * 4) is not None, "an idle HTTP/2 connection stayed open"
    finally:
        silent.close()
        idle.close()
    # A channel that was idle reconnects by itself.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_dims(1, 28, 28), float_val=[0.0])
    )
    stub = prediction_service_pb2_grpc.PredictionServiceStub(standin_only.channel)
    assert stub.Predict(request, timeout=30).outputs["classes"].int64_val


def test_an_allowed_origin_gets_through_and_the_flag_reads_a_list():
    """In-process: the REST front end with --rest_api_allowed_origins set answers the listed
    origin's request (here the fake API's 404) and still refuses any other origin."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from tfserving_standin.cli import build_parser, options_from_args
    from tfserving_standin.core.errors import not_found
    from tfserving_standin.rest_api.server import RestFrontEnd

    class NoModels:
        def model_status(self, name, version, label):
            raise not_found(f"Could not find any versions of model {name}")

    args = build_parser().parse_args(
        ["--model_base_path=/nowhere", "--rest_api_allowed_origins=http://localhost:8080, https://ui.example"]
    )
    allowed = options_from_args(args).allowed_origins
    assert allowed == frozenset({"http://localhost:8080", "https://ui.example"})

    async def scenario():
        app = RestFrontEnd(NoModels(), allowed_origins=allowed).make_app()
        async with TestClient(TestServer(app)) as client:
            listed = await client.get("/v1/models/mnist", headers={"Origin": "https://ui.example"})
            other = await client.get("/v1/models/mnist", headers={"Origin": "https://ui.example.evil"})
            return listed.status, other.status, "Server" in listed.headers

    assert asyncio.run(scenario()) == (404, 403, False)
