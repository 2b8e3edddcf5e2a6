"""The web UI's HTTP/1.1 connection handling: uvicorn's httptools protocol with a whole-request
deadline, bounded request heads, and answers in the app's own format for what the parser refuses.

llhttp (through httptools) parses; it is strict where gunicorn's parser was lenient: duplicate
Content-Length, Content-Length together with Transfer-Encoding, bare LF line endings and malformed
chunk framing are errors, answered here with 400 at once. On top of uvicorn's protocol:

- a deadline per request: from a connection's start (or the end of its previous response) the
  client has `client_timeout` seconds to send the whole request, head and body; then 408 and the
  connection is closed. A connection that sent nothing is closed without a word. Once the whole
  request is in, the deadline no longer applies: the app's time is gunicorn's worker timeout.
- a request target longer than URL_LIMIT_BYTES gets 414, a head larger than HEAD_LIMIT_BYTES 431,
  counted as bytes arrive, so a long header cannot grow in memory first.
- every byte a request sends counts, head, body and chunk framing (a chunk extension carries no
  body but can be hundreds of megabytes): past max_request_bytes plus HEAD_LIMIT_BYTES it gets 413
  at once, not at the deadline.
- CONNECT (a proxy's method) gets 405 and a request target that is not a path 400, at once; an
  upgrade to WebSocket is not taken up (the worker runs no WebSocket protocol), so the request is
  answered as HTTP/1.1 like any other.
- every answer written here is JSON {"error", "status"} with the app's security headers.
"""

from __future__ import annotations

import json

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from mnist_webui.security import ERROR_HEADERS

URL_LIMIT_BYTES = 8 << 10
HEAD_LIMIT_BYTES = 64 << 10


class RequestRefused(Exception):
    """Raised from a parser callback: the request is refused with this status and reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def error_answer(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    body = json.dumps({"error": reason, "status": status}).encode() + b"\n"
    headers = [*ERROR_HEADERS, ("Content-Length", str(len(body))), ("Connection", "close")]
    head = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
    return STATUS_LINE[status] + head + b"\r\n" + body


class DeadlineHttpProtocol(HttpToolsProtocol):
    # Set by the worker (mnist_webui.worker) from WEB_CLIENT_TIMEOUT and the body limit.
    client_timeout: float = 5.0
    max_request_bytes: int = 1 << 20

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = None
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._bytes_since_armed = 0
        self._head_bytes = 0
        self._head_complete = False
        self._deadline = self.loop.call_later(self.client_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _request_received(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and (not cycle.more_body or cycle.response_started)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._request_received():
            return
        if self._bytes_since_armed == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self.refuse(408, f"request not received within {self.client_timeout:g} s")

    def refuse(self, status: int, reason: str) -> None:
        """Answer `status` and close, whatever state the request is in."""
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # too late for an answer: only closing is left
                self.transport.close()
                return
            # The app is waiting for the rest of the body: it sees a disconnect and answers nothing.
            cycle.response_started = cycle.response_complete = cycle.disconnected = True
            cycle.message_event.set()
        if not self.transport.is_closing():
            self.transport.write(error_answer(status, reason))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._bytes_since_armed += len(data)
        if not self._head_complete:
            self._head_bytes += len(data)
        if self._bytes_since_armed > self.max_request_bytes + HEAD_LIMIT_BYTES and not self._request_received():
            self.refuse(413, f"the request is larger than {self.max_request_bytes} bytes (body and framing)")
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            cause = error.__cause__ or error.__context__
            if isinstance(cause, RequestRefused):
                self.refuse(cause.status, cause.reason)
            elif isinstance(cause, httptools.HttpParserError):  # uvicorn's parse of the target
                self.logger.info("malformed request target from %s: %s", self.client, cause)
                self.refuse(400, "malformed request target: send a path")
            else:
                raise
            return
        except httptools.HttpParserUpgrade:
            # An offer to upgrade (curl's "Upgrade: h2c", a WebSocket handshake) that this server
            # does not take up: the request itself is answered as HTTP/1.1, as uvicorn does.
            return

        except httptools.HttpParserError as error:
            self.logger.info("malformed request from %s: %s", self.client, error)
            self.refuse(400, "malformed HTTP request (framing, line endings or headers)")
            return
        if not self._head_complete and self._head_bytes > HEAD_LIMIT_BYTES:
            self.refuse(431, f"request head larger than {HEAD_LIMIT_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:  # uvicorn's own path for parser errors
        self.refuse(400, "malformed HTTP request")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_complete = False
        self._head_bytes = 0
        self._parsed_head_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # The byte count in data_received sees a head that is still arriving; a head that comes
        # whole in one read is parsed before that count is looked at, so the parsed lines count
        # here too (name, value, ": " and CRLF), before the request can reach the app.
        self._parsed_head_bytes += len(name) + len(value) + 4
        if self._parsed_head_bytes + len(self.url) > HEAD_LIMIT_BYTES:
            raise RequestRefused(431, f"request head larger than {HEAD_LIMIT_BYTES} bytes")
        super().on_header(name, value)

    def on_url(self, url: bytes) -> None:
        if self.parser.get_method() == b"CONNECT":
            raise RequestRefused(405, "CONNECT is not supported: this is not a proxy")
        super().on_url(url)
        if len(self.url) > URL_LIMIT_BYTES:
            raise RequestRefused(414, f"request target longer than {URL_LIMIT_BYTES} bytes")

    def on_headers_complete(self) -> None:
        self._head_complete = True
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_deadline()  # the next request on this kept-alive connection

    def connection_lost(self, exc) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)
