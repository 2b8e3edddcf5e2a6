"""The wire between the gRPC front-end process and the model server process.

grpc.aio spends about as much of its event loop's time per call as the whole REST path does, so
gRPC served from the model server's own loop was never faster than REST (see grpc_api/frontend.py).
The gRPC protocol therefore runs in a process of its own, and each call crosses one socketpair
as a frame: the call's id, a kind byte and the serialized request; the answer comes back as a
frame with the same id, the gRPC status code as the kind byte and the serialized response (or,
for a failure, the status message). Both sides import this module; it needs neither grpc nor
TensorFlow, so the front end starts in a fraction of a second.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("<IBI")  # call id, kind, payload length

# Request kinds: the methods the front end forwards, by index. Anything else is UNIMPLEMENTED in
# the front end, without a trip to the model server, as in TF Serving.
METHODS = (
    "/tensorflow.serving.PredictionService/Predict",
    "/tensorflow.serving.PredictionService/GetModelMetadata",
    "/tensorflow.serving.PredictionService/Classify",
    "/tensorflow.serving.PredictionService/Regress",
    "/tensorflow.serving.ModelService/GetModelStatus",
)
METHOD_INDEX = {name: index for index, name in enumerate(METHODS)}

# Control frames carry call id 0 (calls count from 1).
CONTROL_ID = 0
READY = 250  # front end -> server: the gRPC port is bound and serving
BIND_FAILED = 251  # front end -> server: payload is why the port could not be bound
STOP = 252  # server -> front end: payload is the grace period in seconds, as ASCII


def frame_limit(max_message_bytes: int) -> int:
    """The largest payload either side of the bridge accepts, computed once for both. gRPC holds
    requests to max_message_bytes at the port before they are forwarded, and answers (and their
    send limit) are of the same size or smaller; the bound is well above both, so only a
    corrupt stream meets it."""
    return 2 * max_message_bytes + (1 << 20)


def frame(call_id: int, kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(call_id, kind, len(payload)) + payload


class FrameReader:
    """Cuts a byte stream into (call id, kind, payload) frames, however the bytes arrive."""

    def __init__(self, max_payload_bytes: int):
        self._buffer = bytearray()
        self._max_payload = max_payload_bytes

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        self._buffer += data
        frames = []
        start = 0
        buffer = self._buffer
        while len(buffer) - start >= HEADER.size:
            call_id, kind, length = HEADER.unpack_from(buffer, start)
            if length > self._max_payload:
                raise ValueError(f"bridge frame of {length} bytes is over the limit of {self._max_payload}")
            end = start + HEADER.size + length
            if end > len(buffer):
                break
            frames.append((call_id, kind, bytes(buffer[start + HEADER.size : end])))
            start = end
        del buffer[:start]
        return frames
