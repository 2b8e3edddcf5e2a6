"""ASGI middleware: read each request body whole, within the size limit, before the WSGI app runs.

The app runs in a thread of a bounded pool (mnist_webui.wsgi_bridge); a thread is taken only once
this middleware holds the complete body, so a client that sends its body slowly costs the event
loop a little memory and no thread (the connection's deadline is in mnist_webui.http_protocol). A
declared Content-Length over the limit is refused at once; a chunked body is refused with 413 as
soon as it passes the limit, never cut short. The app then sees a plain body with its
Content-Length.
"""

from __future__ import annotations

import json

from mnist_webui.security import ERROR_HEADERS


class BodyTooLarge(Exception):
    pass


async def send_error(send, status: int, reason: str) -> None:
    """A JSON refusal that closes the connection (the rest of the body is never read)."""
    body = json.dumps({"error": reason, "status": status}).encode() + b"\n"
    headers = [(name.lower().encode(), value.encode()) for name, value in ERROR_HEADERS]
    headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BufferedBody:
    """ASGI app in front of `app`, which is called as app(scope, body, send) with the whole body."""

    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    def too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off, and no websocket route exists
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value)  # llhttp has checked it is one decimal number
        if declared is not None and declared > self.max_body_bytes:
            return await send_error(send, 413, self.too_large())
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            return await send_error(send, 413, self.too_large())
        if body is None:
            return  # the client left, or the connection's deadline answered already
        headers = [(n, v) for n, v in scope["headers"] if n not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, body, send)

    async def _read(self, receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
