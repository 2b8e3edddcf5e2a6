"""gunicorn worker that reads each request whole before a thread takes it.

gunicorn's gthread worker gives a connection to a thread as soon as its first bytes arrive, and the
thread then waits on the socket, with no deadline, for the rest of the headers and the body. A few
clients that send a request slowly, or start one and stop (slowloris), hold every thread and
nobody else is served.

Here the worker's event loop (the poller that accepts connections) reads the request head and a
body of declared length, without blocking, and hands the connection to a thread only when they
are complete; the thread then parses from memory. A connection that has not sent its whole
request within WEB_CLIENT_TIMEOUT seconds of its start (or of its last response, when kept alive)
gets 408 and is closed. Heads larger than 64 KiB get 431. What the loop cannot know in advance (a
chunked body, a body over the app's limit, which the app refuses from its header) is left to the
thread, whose socket reads and writes then time out after WEB_CLIENT_TIMEOUT as well.
"""

from __future__ import annotations

import errno
import os
import selectors
import time
from collections import deque
from functools import partial

from gunicorn.workers.gthread import ThreadWorker, TConn

from mnist_webui.config import settings_from_env

HEAD_LIMIT_BYTES = 64 << 10
DEFAULT_CLIENT_TIMEOUT_S = 5.0


def client_timeout_from_env() -> float:
    """WEB_CLIENT_TIMEOUT in seconds; ValueError naming the variable when it is not a usable number."""
    raw = os.environ.get("WEB_CLIENT_TIMEOUT", "")
    if not raw:
        return DEFAULT_CLIENT_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 3600:  # also false for NaN
        raise ValueError(f"WEB_CLIENT_TIMEOUT={raw!r} must be a number of seconds above 0 and at most 3600")
    return seconds


def _error_answer(status: int, reason: str, message: str) -> bytes:
    body = b'{"error": "%s", "status": %d}\n' % (message.encode(), status)
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class BufferedConn(TConn):
    """A connection with the bytes the event loop read for it, and the deadline for reading them."""

    def __init__(self, cfg, sock, client, server, client_timeout: float):
        super().__init__(cfg, sock, client, server)
        self.client_timeout = client_timeout
        self.received = bytearray()
        self.needed: int | None = None  # bytes of head + body to wait for, once the head is in
        self.read_deadline = 0.0
        self.reading = False

    def init(self):
        super().init()
        if self.received:
            self.parser.unreader.unread(bytes(self.received))
            self.received = bytearray()
        # Anything the thread still reads or writes on the socket is bounded too.
        self.sock.settimeout(self.client_timeout)


class BufferedThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.client_timeout = client_timeout_from_env()
        self.body_limit = settings_from_env().max_request_bytes
        # (deadline, connection) in deadline order, as every connection gets the same timeout. An entry
        # is stale when its connection has been handed over (or restarted reading) since.
        self.reading_conns: deque[tuple[float, BufferedConn]] = deque()

    def accept(self, listener):
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConn(self.cfg, client_sock, client_addr, listener.getsockname(), self.client_timeout)
        self._start_reading(conn)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection has bytes of its next request."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn)
        self._read_available(conn)

    def _start_reading(self, conn: BufferedConn) -> None:
        conn.sock.setblocking(False)
        conn.needed = None
        conn.read_deadline = time.monotonic() + self.client_timeout
        conn.reading = True
        self.reading_conns.append((conn.read_deadline, conn))
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_available, conn))

    def _read_available(self, conn: BufferedConn, _fileobj=None) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._stop_reading(conn, answer=None)
            return
        if not data:  # the client went away
            self._stop_reading(conn, answer=None)
            return
        conn.received += data
        if conn.needed is None:
            head_end = conn.received.find(b"\r\n\r\n")
            if head_end < 0:
                if len(conn.received) > HEAD_LIMIT_BYTES:
                    self._stop_reading(conn, _error_answer(431, "Request Header Fields Too Large",
                                                           f"request head larger than {HEAD_LIMIT_BYTES} bytes"))
                return
            conn.needed = head_end + 4 + self._body_to_wait_for(bytes(conn.received[:head_end]))
        if len(conn.received) >= conn.needed:
            self._hand_to_thread(conn)

    def _body_to_wait_for(self, head: bytes) -> int:
        """The declared body length when it is within the app's limit, else 0: the thread (and the
        app) deal with chunked bodies, oversized ones (413 from the header), malformed heads, and
        "Expect: 100-continue", where the client sends its body only after gunicorn's answer."""
        declared = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in (b"transfer-encoding", b"expect"):
                return 0
            if name == b"content-length":
                declared = value.strip()
        if declared is None or not declared.isdigit():
            return 0
        length = int(declared)
        return length if length <= self.body_limit else 0

    def _hand_to_thread(self, conn: BufferedConn) -> None:
        self.poller.unregister(conn.sock)
        conn.reading = False  # its entry in reading_conns is stale now
        conn.data_ready = True  # no wait for first bytes in the thread
        self.enqueue_req(conn)

    def _stop_reading(self, conn: BufferedConn, answer: bytes | None) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        conn.reading = False
        if answer is not None:
            try:
                conn.sock.send(answer)  # best effort: a small answer fits the socket buffer
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        super().murder_pending()
        now = time.monotonic()
        while self.reading_conns and self.reading_conns[0][0] <= now:
            deadline, conn = self.reading_conns.popleft()
            if conn.reading and conn.read_deadline == deadline:
                # Silence for a connection that never sent anything; a reason for one that did.
                answer = None if not conn.received else _error_answer(
                    408, "Request Timeout", f"request not received within {self.client_timeout:g} s")
                self._stop_reading(conn, answer)
