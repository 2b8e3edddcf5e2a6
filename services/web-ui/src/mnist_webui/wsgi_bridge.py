"""The Flask app behind the event loop: one hand-over to a thread per request, one back.

The loop has read the whole request body before this runs (mnist_webui.request_body). The WSGI
app then runs in a thread of a bounded pool on that body, its whole answer is collected in the
thread, and the loop writes it. A streaming bridge (a2wsgi, used before) hands over every body
chunk and every piece of the answer separately, each a round trip between thread and loop (a
future, a lock, a wake-up of the other side); under full load those round trips were about a
third of a web UI worker's CPU (py-spy --gil, make bench BENCH_RPS=0). Every answer of this app
is small (JSON, a page, a few static files), so nothing is lost by collecting it whole.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor


def _latin1(text: str) -> str:
    """A str as WSGI wants it: its UTF-8 bytes read as Latin-1 (PEP 3333, "native strings")."""
    return text.encode("utf-8").decode("latin-1")


def wsgi_environ(scope: dict, body: bytes) -> dict:
    """The WSGI environ of an ASGI HTTP scope whose body has been read whole."""
    script_name = _latin1(os.environ.get("SCRIPT_NAME", "") or scope.get("root_path", ""))
    path_info = _latin1(scope["path"])
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    server_host, server_port = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server_host,
        "SERVER_PORT": str(server_port or 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], port = scope["client"]
        environ["REMOTE_PORT"] = str(port)
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name
        value = raw_value.decode("latin-1")
        # Repeated headers join with commas (RFC 9110 5.3), as a WSGI server presents them.
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def run_wsgi(app, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Call the WSGI app and collect its answer: (status code, ASGI headers, body)."""
    answer: dict = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        # Nothing is sent before the app returns, so an error page (exc_info) may always replace
        # what an earlier call set (PEP 3333).
        answer["status"], answer["headers"] = status, headers
        return chunks.append  # the legacy write() callable

    result = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in answer:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status = int(answer["status"].split(" ", 1)[0])
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer["headers"]]
    return status, headers, b"".join(chunks)


class WsgiInThreads:
    """Runs a WSGI app for buffered requests in a pool of `threads` threads."""

    def __init__(self, app, threads: int):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="wsgi")

    async def __call__(self, scope: dict, body: bytes, send) -> None:
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(self.pool, run_wsgi, self.app, wsgi_environ(scope, body))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})
