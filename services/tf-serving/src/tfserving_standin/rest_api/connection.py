"""The REST port's connections: aiohttp's request handler with the API's answers for what it refuses.

- A request whose head aiohttp's parser refuses is answered 400 in the API's JSON error shape and
  logged in one line, without a traceback and without the raw bytes (aiohttp answers plain text
  that echoes them, and logs a traceback for each: a 35-byte request made 790 bytes of log).
- A request counts every byte it sends, head, body and chunk framing (a chunk extension carries no
  body but can be hundreds of megabytes): past the body limit plus MAX_HEAD_BYTES the request is
  answered 413 and the connection closed, at once rather than at the client timeout.
- No `Server:` header names the stack (TF Serving's own REST server sends none).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from tfserving_standin.rest_api import json_codec as rest_json

log = logging.getLogger("tfserving_standin.rest_api")

# What a request head may take besides its body (aiohttp's own bounds: 8 KiB lines, 16 KiB fields).
MAX_HEAD_BYTES = 1 << 20


def error_answer(status: int, reason: str) -> bytes:
    """A whole HTTP/1.1 answer in the API's JSON error shape that closes the connection."""
    body = rest_json.error_body(reason)
    phrase = {400: "Bad Request", 413: "Request Entity Too Large"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _JsonResponse(web.Response):
    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self._headers.popall("Server", None)


async def drop_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs after aiohttp has added its `Server` header, before it is sent."""
    response.headers.popall("Server", None)
    connection = request.protocol
    if isinstance(connection, RestConnection):
        connection.request_answered()


class RestConnection(RequestHandler):
    max_request_bytes: int = 4 << 20  # set per server by connection_class()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.received_bytes = 0
        self._refused = False  # an answer that closes the connection is on its way

    def data_received(self, data: bytes) -> None:
        if self._refused or self._force_close or self._close:
            return
        self.received_bytes += len(data)
        if self.received_bytes > self.max_request_bytes + MAX_HEAD_BYTES and self.transport is not None:
            self._refused = True
            if not self.transport.is_closing():
                self.transport.write(
                    error_answer(413, f"Request larger than the limit of {self.max_request_bytes} bytes")
                )
                self.transport.close()
            return
        super().data_received(data)
        # The parser refused the request: aiohttp answers it (handle_error) on its next turn, and
        # nothing that arrives before then is counted or answered again.
        if any(isinstance(message, _ErrInfo) for message, _ in self._messages):
            self._refused = True

    def request_answered(self) -> None:
        """The next request's bytes count from here (called when an answer is being written)."""
        self.received_bytes = 0

    def handle_error(self, request, status: int = 500, exc=None, message=None) -> web.StreamResponse:
        if status >= 500:
            log.error("REST: request from %s failed (%d)", request.remote, status, exc_info=exc)
            reason = "Internal error; see the server log"
        else:
            log.info("REST: malformed request from %s refused (%d, %s)", request.remote, status, type(exc).__name__)
            reason = "Malformed HTTP request: the request line, a header or the framing is invalid"
        response = _JsonResponse(status=status, body=rest_json.error_body(reason), content_type="application/json")
        response.force_close()
        return response


class _RestServer(web.Server):
    connection: type[RestConnection] = RestConnection

    def __call__(self) -> RestConnection:
        return self.connection(self, loop=self._loop, **self._kwargs)


class RestRunner(web.AppRunner):
    """An AppRunner whose connections are RestConnections with this body limit."""

    def __init__(self, app: web.Application, max_request_bytes: int, **kwargs):
        super().__init__(app, **kwargs)
        self._connection = type("ConfiguredRestConnection", (RestConnection,), {"max_request_bytes": max_request_bytes})

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = type("ConfiguredRestServer", (_RestServer,), {"connection": self._connection})
        return server
