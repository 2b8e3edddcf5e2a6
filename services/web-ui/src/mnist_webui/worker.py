"""gunicorn worker that reads each request whole, on an event loop, before a thread takes it.

gunicorn's gthread worker gives a connection to a thread as soon as its first bytes arrive, and the
thread then reads the rest of the headers and the body itself, each read with its own timeout: a
few clients trickling a body (chunked, or after "Expect: 100-continue") hold every thread.

Here uvicorn's asyncio server (uvicorn-worker's gunicorn worker class) reads requests on the
worker's event loop with llhttp (httptools). mnist_webui.http_protocol gives each request one
deadline for head and body, WEB_CLIENT_TIMEOUT seconds, then 408; mnist_webui.request_body holds
the body until it is complete (413 past the limit, whatever the transfer encoding); only then
does mnist_webui.wsgi_bridge run the Flask app in one of WEB_THREADS threads.
"""

from __future__ import annotations

import os

from uvicorn_worker import UvicornWorker

from mnist_webui.config import settings_from_env
from mnist_webui.http_protocol import DeadlineHttpProtocol
from mnist_webui.request_body import BufferedBody
from mnist_webui.wsgi_bridge import WsgiInThreads

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


class BufferedRequestWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": DeadlineHttpProtocol,
        "lifespan": "off",  # a WSGI app has no start-up or shutdown events
        "server_header": False,  # no version advertised
        "ws": "none",  # no WebSocket route: an upgrade request is answered as plain HTTP/1.1
    }

    def __init__(self, *args, **kwargs):
        timeout = client_timeout_from_env()
        # One protocol class per worker with this worker's deadline (uvicorn builds the protocol).
        self.CONFIG_KWARGS = {
            **self.CONFIG_KWARGS,
            "http": type(
                "ConfiguredHttpProtocol",
                (DeadlineHttpProtocol,),
                {"client_timeout": timeout, "max_request_bytes": settings_from_env().max_request_bytes},
            ),
        }
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout

    def load_wsgi(self):
        super().load_wsgi()
        # The Flask app in a bounded thread pool, behind the body buffer.
        self.wsgi = BufferedBody(WsgiInThreads(self.wsgi, self.cfg.threads), settings_from_env().max_request_bytes)
