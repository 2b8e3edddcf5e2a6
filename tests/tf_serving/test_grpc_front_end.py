"""The stand-in's gRPC front-end process: its wire to the model server, and its life and death.

gRPC runs in a process of its own that forwards each call's bytes to the model server (see
tfserving_standin/grpc_api/frontend.py). What must hold: frames survive any split of the byte
stream; bytes that are no request get a status, not a crash; the two processes live and die
together, so a killed server never leaves the gRPC port held, and a dead front end never leaves
a server that looks healthy on REST while gRPC is gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import psutil
import pytest
import requests
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from tests.support.standin import standin_command
from tests.tf_serving.serving_harness import MODEL_NAME, publish, start_standin
from tfserving_standin.grpc_api.bridge import HEADER, METHODS, FrameReader, frame

pytestmark = pytest.mark.slow


def test_frames_come_out_whole_however_the_stream_is_cut():
    frames = [(1, 0, b"x" * 300), (2, 4, b""), (0xFFFFFFFF, 13, bytes(range(256)))]
    stream = b"".join(frame(*f) for f in frames)
    whole = FrameReader(1024)
    assert whole.feed(stream) == frames
    trickled = FrameReader(1024)
    out = []
    for i in range(len(stream)):
        out += trickled.feed(stream[i : i + 1])
    assert out == frames
    halves = FrameReader(1024)
    assert halves.feed(stream[: HEADER.size + 100]) == []  # first frame not complete yet
    assert halves.feed(stream[HEADER.size + 100 :]) == frames


def test_a_frame_over_the_limit_is_refused_before_it_is_buffered():
    with pytest.raises(ValueError, match="over the limit of 1024"):
        FrameReader(1024).feed(HEADER.pack(1, 0, 1025))


def test_the_model_server_side_answers_a_method_index_it_does_not_know_with_unimplemented():
    import asyncio

    from tfserving_standin.grpc_api.dispatch import GrpcMethods

    code, message = asyncio.run(GrpcMethods(api=None).answer(len(METHODS), b""))
    assert (code, message) == (grpc.StatusCode.UNIMPLEMENTED.value[0], b"Method not found")


def test_bytes_that_are_no_request_get_internal_and_no_trace(standin_only):
    call = standin_only.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff not a protocol buffer", timeout=30)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "Failed to parse the request message"
    # The server goes on answering.
    status = standin_only.channel.unary_unary("/tensorflow.serving.ModelService/GetModelStatus")
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=MODEL_NAME))
    answer = get_model_status_pb2.GetModelStatusResponse.FromString(status(request.SerializeToString(), timeout=30))
    assert [entry.state for entry in answer.model_version_status] == [get_model_status_pb2.ModelVersionStatus.AVAILABLE]


def test_a_method_tf_serving_has_not_is_unimplemented(standin_only):
    call = standin_only.channel.unary_unary("/tensorflow.serving.PredictionService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"", timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _front_end(server) -> psutil.Process:
    children = psutil.Process(server.process.pid).children()
    assert [" ".join(child.cmdline()[1:3]) for child in children] == ["-m tfserving_standin.grpc_api.frontend"]
    return children[0]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def own_standin(tmp_path, exported_version):
    """A stand-in of this test's own, since the test kills it."""
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, exported_version)
    server = start_standin(base_path, tmp_path / "standin.log")
    yield server
    server.stop()


def test_the_model_server_killed_takes_its_front_end_and_frees_the_grpc_port(own_standin):
    front_end = _front_end(own_standin)
    grpc_port = int(own_standin.grpc_target.rsplit(":", 1)[1])
    os.kill(own_standin.process.pid, signal.SIGKILL)
    own_standin.process.wait(timeout=10)
    front_end.wait(timeout=10)  # dies with its parent: PR_SET_PDEATHSIG
    deadline = time.monotonic() + 10
    while not _port_is_free(grpc_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _port_is_free(grpc_port)


def test_the_front_end_killed_stops_the_model_server_with_an_error(own_standin):
    front_end = _front_end(own_standin)
    front_end.kill()
    assert own_standin.process.wait(timeout=30) == 1
    log = own_standin.log_text()
    assert "the gRPC front end exited unexpectedly (exit code -9); gRPC is down" in log
    assert "Traceback" not in log


def test_sigterm_stops_both_processes_cleanly(own_standin):
    front_end = _front_end(own_standin)
    assert requests.get(own_standin.model_url(), timeout=10).status_code == 200
    own_standin.process.send_signal(signal.SIGTERM)
    assert own_standin.process.wait(timeout=30) == 0
    front_end.wait(timeout=10)  # reaped by the model server before it exited
    log = own_standin.log_text()
    assert "Traceback" not in log and "gRPC front end exited with" not in log


def test_a_grpc_port_in_use_is_an_error_that_names_it(tmp_path, exported_version):
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, exported_version)
    with socket.socket(socket.AF_INET) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            standin_command(grpc_port=port, rest_port=0, base_path=base_path, batching=False, monitoring=False),
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
    assert result.returncode == 1
    assert f"tfserving-standin: error: cannot bind gRPC to 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_front_end_that_dies_before_binding_is_not_called_a_port_problem():
    import asyncio

    from tfserving_standin.grpc_api.dispatch import FrontEndError, GrpcFrontEnd

    class Crashing(GrpcFrontEnd):
        def command(self, bridge_fd):
            return [sys.executable, "-c", "import sys; sys.exit(3)"]

    with pytest.raises(FrontEndError) as caught:
        asyncio.run(Crashing(api=None, metrics=None, address="127.0.0.1:1", max_message_bytes=1024).start())
    assert str(caught.value) == "the gRPC front end exited (exit code 3) before it bound 127.0.0.1:1"
