"""TF Serving's gRPC services, for tensorflow-serving-api's stubs.

PredictionService: Predict, GetModelMetadata (and Classify/Regress, refused as TF Serving refuses
them for predict signatures); ModelService: GetModelStatus. Failures carry the canonical code
TF Serving uses (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE).

The gRPC protocol itself runs in a front-end process (grpc_api/frontend.py says why); this module is
the model server's side: GrpcMethods answers a serialized request with a status code and a
serialized response, and GrpcFrontEnd starts that process and answers what it forwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time

import grpc
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

from tfserving_standin.core import tensors
from tfserving_standin.core.api import ServingApi
from tfserving_standin.core.errors import ServingError, invalid_argument
from tfserving_standin.grpc_api.bridge import (
    CONTROL_ID,
    METHOD_INDEX,
    READY,
    STOP,
    FrameReader,
    frame,
    frame_limit,
)

log = logging.getLogger(__name__)
_OK = grpc.StatusCode.OK.value[0]
FRONT_END_START_TIMEOUT_S = 60.0


class FrontEndError(OSError):
    """The gRPC front end could not start, or exited while the server was running."""


def _spec(model_spec):
    """(name, version, label) from a request's ModelSpec."""
    which = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if which == "version" else None
    label = model_spec.version_label if which == "version_label" else None
    return model_spec.name, version, label


class GrpcMethods:
    """Each method as serialized request in, (status code, serialized response or message) out."""

    def __init__(self, api: ServingApi, metrics=None):
        self._api = api
        self._metrics = metrics
        service = "/tensorflow.serving.PredictionService/"
        self._methods = {
            METHOD_INDEX[service + "Predict"]: ("predict", predict_pb2.PredictRequest, self._predict),
            METHOD_INDEX[service + "GetModelMetadata"]: (
                "get_model_metadata",
                get_model_metadata_pb2.GetModelMetadataRequest,
                self._metadata,
            ),
            METHOD_INDEX[service + "Classify"]: ("classify", classification_pb2.ClassificationRequest, self._classify),
            METHOD_INDEX[service + "Regress"]: ("regress", regression_pb2.RegressionRequest, self._regress),
            METHOD_INDEX["/tensorflow.serving.ModelService/GetModelStatus"]: (
                "get_model_status",
                get_model_status_pb2.GetModelStatusRequest,
                self._status,
            ),
        }

    async def answer(self, method: int, request_bytes: bytes) -> tuple[int, bytes]:
        if method not in self._methods:  # the front end forwards only known methods; never trust a wire
            return grpc.StatusCode.UNIMPLEMENTED.value[0], b"Method not found"
        api_name, request_type, handler = self._methods[method]
        started = time.perf_counter()
        status, model_name, version = "OK", "", None
        try:
            try:
                request = request_type.FromString(request_bytes)
            except DecodeError:
                # What both gRPC libraries answer for a message they cannot parse.
                raise ServingError(grpc.StatusCode.INTERNAL, "Failed to parse the request message") from None
            model_name = request.model_spec.name
            response, version = await handler(request)
            return _OK, response.SerializeToString()
        except ServingError as error:
            status = error.code_name
            return error.code.value[0], error.message.encode()
        except Exception:  # noqa: BLE001 - never leak internals to the client
            status = "INTERNAL"
            log.exception("gRPC %s failed", api_name)
            return grpc.StatusCode.INTERNAL.value[0], b"Internal error; see the server log"
        finally:
            if self._metrics is not None:
                self._metrics.observe(model_name, version, api_name, "GRPC", status, time.perf_counter() - started)

    async def _predict(self, request):
        name, version, label = _spec(request.model_spec)
        state, signature = self._api.resolve_signature(name, version, label, request.model_spec.signature_name)
        inputs = {key: tensors.to_numpy(proto, key) for key, proto in request.inputs.items()}
        outputs = await self._api.predict(state, signature, inputs, tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = state.version
        response.model_spec.signature_name = signature.name
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tensors.to_proto(value))
        return response, state.version

    async def _metadata(self, request):
        name, version, label = _spec(request.model_spec)
        response = self._api.model_metadata(name, version, label, tuple(request.metadata_field))
        return response, response.model_spec.version.value

    async def _classify(self, request):
        return self._refuse(request, "classify")

    async def _regress(self, request):
        return self._refuse(request, "regress")

    def _refuse(self, request, method):
        name, version, label = _spec(request.model_spec)
        self._api.unsupported_method(name, version, label, request.model_spec.signature_name, method)
        raise invalid_argument(f"{method} is not supported")  # unreachable: the line above raises

    async def _status(self, request):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        name, version, label = _spec(request.model_spec)
        return self._api.model_status(name, version, label), None


class _FrontEndLink(asyncio.Protocol):
    """The model server's side of the bridge: answers every forwarded call as it comes."""

    def __init__(self, methods: GrpcMethods, max_payload_bytes: int):
        self._methods = methods
        self._reader = FrameReader(max_payload_bytes)
        self._transport: asyncio.Transport | None = None
        self._calls: set[asyncio.Task] = set()
        loop = asyncio.get_running_loop()
        # None once the port is bound; else BIND_FAILED's reason, or "" if the front end ended first.
        self.started: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()

    def connection_made(self, transport) -> None:
        self._transport = transport

    def send_stop(self, grace: float) -> None:
        if not self._transport.is_closing():
            self._transport.write(frame(CONTROL_ID, STOP, str(grace).encode()))

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except ValueError as error:  # a corrupt stream: nothing after it can be trusted
            log.error("gRPC front end: %s", error)
            self._transport.close()
            return
        for call_id, kind, payload in frames:
            if call_id == CONTROL_ID:
                if not self.started.done():
                    self.started.set_result(None if kind == READY else payload.decode("utf-8", "replace"))
                continue
            call = asyncio.ensure_future(self._answer(call_id, kind, payload))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _answer(self, call_id: int, method: int, payload: bytes) -> None:
        code, body = await self._methods.answer(method, payload)
        if not self._transport.is_closing():
            self._transport.write(frame(call_id, code, body))

    def connection_lost(self, exc) -> None:
        if not self.started.done():
            self.started.set_result("")
        if not self.closed.done():
            self.closed.set_result(None)


class GrpcFrontEnd:
    """Starts the gRPC front-end process on `address` and serves the calls it forwards."""

    def __init__(
        self,
        api: ServingApi,
        metrics,
        address: str,
        max_message_bytes: int,
        log_level: str = "WARNING",
        idle_seconds: float = 5.0,
    ):
        self._methods = GrpcMethods(api, metrics)
        self._address = address
        self._max_message_bytes = max_message_bytes
        self._idle_seconds = idle_seconds
        self._log_level = log_level
        self._process: subprocess.Popen | None = None
        self._link: _FrontEndLink | None = None
        self._stopping = False

    def command(self, bridge_fd: int) -> list[str]:
        """The front end's command line, given its end of the socketpair."""
        return [
            sys.executable,
            "-m",
            "tfserving_standin.grpc_api.frontend",
            f"--address={self._address}",
            f"--bridge_fd={bridge_fd}",
            f"--parent_pid={os.getpid()}",
            f"--max_message_bytes={self._max_message_bytes}",
            f"--idle_seconds={self._idle_seconds:g}",
            f"--log_level={self._log_level}",
        ]

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                self.command(theirs.fileno()), pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
        finally:
            theirs.close()
        loop = asyncio.get_running_loop()
        limit = frame_limit(self._max_message_bytes)
        _, self._link = await loop.connect_accepted_socket(lambda: _FrontEndLink(self._methods, limit), ours)
        try:
            bind_failure = await asyncio.wait_for(asyncio.shield(self._link.started), FRONT_END_START_TIMEOUT_S)
        except TimeoutError:
            await self._reap(timeout=0)
            raise FrontEndError(f"the gRPC front end did not start within {FRONT_END_START_TIMEOUT_S:g} s") from None
        if bind_failure is not None:
            code = await self._reap(timeout=5)
            if bind_failure:
                raise FrontEndError(f"cannot bind gRPC to {self._address}: {bind_failure}")
            # Not a port problem (say, it could not start at all): its own error is in the log above.
            raise FrontEndError(f"the gRPC front end exited (exit code {code}) before it bound {self._address}")

    async def wait_closed(self) -> None:
        """Returns when the front end exits; raises FrontEndError if nobody asked it to."""
        await asyncio.shield(self._link.closed)
        if not self._stopping:
            code = await self._reap(timeout=5)
            raise FrontEndError(f"the gRPC front end exited unexpectedly (exit code {code}); gRPC is down")

    async def stop(self, grace: float) -> None:
        """Stop taking calls, answer those in flight for up to `grace` seconds, then end the process."""
        self._stopping = True
        if self._link is None:
            return
        self._link.send_stop(grace)
        try:
            await asyncio.wait_for(asyncio.shield(self._link.closed), grace + 5)
        except TimeoutError:
            log.warning("gRPC front end did not stop within %.0f s; killing it", grace + 5)
        code = await self._reap(timeout=5)
        if code:
            log.warning("gRPC front end exited with code %s while stopping", code)

    async def _reap(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self._process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        return self._process.returncode
