"""The gRPC front end: a process that speaks gRPC on the port and forwards each call's bytes.

Why a process of its own: grpc.aio does its per-call work (HTTP/2 streams, completion queue
events handed from gRPC's threads to the event loop) while holding the GIL, about 0.2 ms of
loop time a call. On the model server's loop that was as much as the whole REST path, JSON and
all, so gRPC could not be the faster API. Here that work has its own GIL and core, and the model
server's loop only reads a frame, answers it from the binary proto and writes a frame back
(grpc_api/bridge.py). Parsing, checks, batching, metrics and status codes all stay in the model
server (grpc_api/dispatch.py), so REST and gRPC still share one implementation.

Started by the model server with one end of a socketpair (--bridge_fd); never by hand. It dies
with the model server (PR_SET_PDEATHSIG, and end of file on the bridge), so a killed server
never leaves the port held.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import itertools
import logging
import os
import signal
import socket
import sys

import grpc

from mnist_common import logs
from tfserving_standin.core import event_loop
from tfserving_standin.grpc_api import bridge

log = logging.getLogger("tfserving_standin.grpc_api.frontend")
_PR_SET_PDEATHSIG = 1
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ModelServerLink(asyncio.Protocol):
    """The front end's side of the bridge: one pending future per call in flight."""

    def __init__(self, max_payload_bytes: int):
        self._reader = bridge.FrameReader(max_payload_bytes)
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.cycle(range(1, 1 << 32))  # 0 is the control frames' id
        self._transport: asyncio.Transport | None = None
        self.stop_requested: asyncio.Future = asyncio.get_running_loop().create_future()  # grace seconds
        self.lost = asyncio.Event()

    def connection_made(self, transport) -> None:
        self._transport = transport

    def send_control(self, kind: int, payload: bytes = b"") -> None:
        self._transport.write(bridge.frame(bridge.CONTROL_ID, kind, payload))

    async def call(self, method: int, request: bytes) -> tuple[int, bytes]:
        if self.lost.is_set():
            return grpc.StatusCode.UNAVAILABLE.value[0], b"The model server is shutting down; retry"
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            self._transport.write(bridge.frame(call_id, method, request))
            return await future
        finally:
            self._pending.pop(call_id, None)  # answered, or the client went away (cancelled)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except ValueError as error:  # a corrupt stream: end it; the calls in flight get UNAVAILABLE
            log.error("bridge to the model server: %s", error)
            self._transport.close()
            return
        for call_id, kind, payload in frames:
            if call_id == bridge.CONTROL_ID:
                if kind == bridge.STOP and not self.stop_requested.done():
                    self.stop_requested.set_result(float(payload or b"0"))
                continue
            future = self._pending.get(call_id)
            if future is not None and not future.done():
                future.set_result((kind, payload))

    async def close(self) -> None:
        """Send what is still buffered (os._exit would drop it), then close."""
        self._transport.close()
        await self.lost.wait()

    def connection_lost(self, exc) -> None:
        self.lost.set()
        for future in self._pending.values():
            if not future.done():
                future.set_result((grpc.StatusCode.UNAVAILABLE.value[0], b"The model server is gone; retry"))


class ForwardingHandler(grpc.GenericRpcHandler):
    """Every known method as bytes in, bytes out; unknown ones are left to gRPC (UNIMPLEMENTED)."""

    def __init__(self, link: ModelServerLink):
        self._link = link
        self._handlers = {
            name: grpc.unary_unary_rpc_method_handler(self._forwarder(index))
            for name, index in bridge.METHOD_INDEX.items()
        }

    def _forwarder(self, method: int):
        async def forward(request: bytes, context) -> bytes:
            code, payload = await self._link.call(method, request)
            if code:
                await context.abort(_CODES.get(code, grpc.StatusCode.UNKNOWN), payload.decode("utf-8", "replace"))
            return payload

        return forward

    def service(self, handler_call_details):
        return self._handlers.get(handler_call_details.method)


async def _serve(address: str, bridge_socket: socket.socket, max_message_bytes: int, idle_seconds: float) -> int:
    loop = asyncio.get_running_loop()
    limit = bridge.frame_limit(max_message_bytes)
    _, link = await loop.connect_accepted_socket(lambda: ModelServerLink(limit), bridge_socket)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
            # Idle connections close as the REST port's do (--client_timeout_seconds): a connection
            # with no call in flight for that long gets GOAWAY and is closed, and one that has not
            # finished its HTTP/2 handshake by then is dropped. gRPC's defaults keep both forever
            # (max_connection_idle) or for two minutes (handshake).
            ("grpc.max_connection_idle_ms", int(idle_seconds * 1000)),
            ("grpc.server_handshake_timeout_ms", int(idle_seconds * 1000)),
        ]
    )
    server.add_generic_rpc_handlers((ForwardingHandler(link),))
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        bound, reason = 0, str(error) or "gRPC refused the address"
    else:
        reason = "the address is in use or not local"
    if bound == 0:
        link.send_control(bridge.BIND_FAILED, reason.encode())
        await link.close()
        return 1
    await server.start()
    link.send_control(bridge.READY)
    # SIGINT (Ctrl-C reaches the whole process group) and SIGTERM: the model server decides when
    # to stop, and says so with a STOP frame; calls in flight need it to be there to answer them.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: None)
    lost = asyncio.ensure_future(link.lost.wait())
    await asyncio.wait([link.stop_requested, lost], return_when=asyncio.FIRST_COMPLETED)
    grace = link.stop_requested.result() if link.stop_requested.done() else 0.0
    await server.stop(grace)  # calls in flight are answered while the bridge is up
    await link.close()
    return 0 if link.stop_requested.done() else 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the bridge's end of file still stops us
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tfserving-standin gRPC front end")
    parser.add_argument("--address", required=True)
    parser.add_argument("--bridge_fd", type=int, required=True)
    parser.add_argument("--parent_pid", type=int, required=True)
    parser.add_argument("--max_message_bytes", type=int, required=True)
    parser.add_argument("--idle_seconds", type=float, default=5.0)
    parser.add_argument("--log_level", default="WARNING")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid)
    logs.configure("tfserving-standin", args.log_level)  # the parent checked LOG_FORMAT
    bridge_socket = socket.socket(fileno=args.bridge_fd)
    event_loop.exit_now(event_loop.run(_serve(args.address, bridge_socket, args.max_message_bytes, args.idle_seconds)))


if __name__ == "__main__":
    sys.exit(main())
