"""The web UI's head limit holds however the bytes arrive: a head over the limit that reaches the
server in one read (parsed whole before the byte count of data_received is looked at) gets 431
too, and the app never sees it. Runs the protocol on a real event loop with an in-memory
transport, so no socket's read sizes decide which path is taken."""

from __future__ import annotations

import asyncio

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from mnist_webui.http_protocol import HEAD_LIMIT_BYTES, DeadlineHttpProtocol


class MemoryTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


def answer_to(request: bytes) -> tuple[bytes, list[dict]]:
    """Feed `request` in one data_received call; (bytes written back, scopes the app saw)."""
    seen: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run():
        config = Config(app, http=DeadlineHttpProtocol, lifespan="off", log_config=None)
        protocol = DeadlineHttpProtocol(config, ServerState(), {}, asyncio.get_running_loop())
        transport = MemoryTransport()
        protocol.connection_made(transport)
        protocol.data_received(request)
        for _ in range(20):  # let a dispatched request run to its answer
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        return bytes(transport.written)

    return asyncio.run(run()), seen


def test_a_small_head_in_one_read_reaches_the_app():
    written, seen = answer_to(b"GET / HTTP/1.1\r\nHost: x\r\nX-Small: " + b"a" * 100 + b"\r\n\r\n")
    assert written.startswith(b"HTTP/1.1 200")
    assert len(seen) == 1


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Big: " + b"a" * (HEAD_LIMIT_BYTES + 10) + b"\r\n", id="one long header"),
        pytest.param(
            b"".join(b"X-%d: %s\r\n" % (i, b"b" * 60) for i in range(HEAD_LIMIT_BYTES // 60)), id="many headers"
        ),
    ],
)
def test_an_over_long_head_in_one_read_gets_431_and_never_reaches_the_app(head):
    written, seen = answer_to(b"GET / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
    assert written.startswith(b"HTTP/1.1 431"), written[:200]
    assert b'"status": 431' in written
    assert seen == []
