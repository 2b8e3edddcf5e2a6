"""The web UI's ASGI-to-WSGI bridge: the environ a WSGI app sees and the answer it collects.

End to end (gunicorn, the real worker) the bridge is exercised by test_webui_hardening and the
resilience suite; these check the PEP 3333 details a request rarely shows.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from flask import Flask, request

from mnist_webui.wsgi_bridge import WsgiInThreads, run_wsgi, wsgi_environ


def scope(**overrides) -> dict:
    base = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/predict",
        "root_path": "",
        "query_string": b"a=1&b=%C3%A9",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 51234),
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"x-forwarded-for", b"10.0.0.2"),
        ],
    }
    return {**base, **overrides}


def test_environ_carries_the_request_as_pep_3333_says():
    environ = wsgi_environ(scope(), b"{}")
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/api/v1/predict"
    assert environ["QUERY_STRING"] == "a=1&b=%C3%A9"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert environ["HTTP_HOST"] == "127.0.0.1:8080"
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1,10.0.0.2"  # repeated headers joined
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "8080")
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("127.0.0.1", "51234")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.input"].read() == b"{}"


def test_environ_paths_are_latin1_native_strings_under_the_root_path():
    environ = wsgi_environ(scope(path="/ui/é", root_path="/ui"), b"")
    assert environ["SCRIPT_NAME"] == "/ui"
    assert environ["PATH_INFO"] == "/é".encode().decode("latin-1")


def test_flask_reads_the_request_from_the_environ():
    app = Flask(__name__)

    @app.post("/api/v1/predict")
    def echo():
        return {"body": request.get_json(), "args": request.args.to_dict(), "remote": request.remote_addr}

    status, headers, body = run_wsgi(app.wsgi_app, wsgi_environ(scope(), b'{"x": 1}'))
    assert status == 200
    assert (b"content-type", b"application/json") in headers
    assert json.loads(body) == {"body": {"x": 1}, "args": {"a": "1", "b": "é"}, "remote": "127.0.0.1"}


def test_write_callable_iterable_and_close_are_all_honoured():
    closed = []

    class Answer:
        def __iter__(self):
            yield b"two,"
            yield b""
            yield b"three"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        write = start_response("201 Created", [("X-Thing", "1")])
        write(b"one,")
        return Answer()

    assert run_wsgi(app, wsgi_environ(scope(), b"")) == (201, [(b"x-thing", b"1")], b"one,two,three")
    assert closed == [True]


def test_close_runs_even_when_the_iterable_fails():
    closed = []

    class Failing:
        def __iter__(self):
            raise OSError("disk went away")
            yield b""  # pragma: no cover

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Failing()

    with pytest.raises(OSError):
        run_wsgi(app, wsgi_environ(scope(), b""))
    assert closed == [True]


def test_an_error_page_replaces_the_first_start_response():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late failure")
        except ValueError as error:
            start_response("500 Internal Server Error", [("Content-Type", "text/html")], (type(error), error, None))
        return [b"oops"]

    assert run_wsgi(app, wsgi_environ(scope(), b"")) == (500, [(b"content-type", b"text/html")], b"oops")


def test_an_app_that_never_starts_a_response_is_an_error():
    with pytest.raises(RuntimeError, match="start_response"):
        run_wsgi(lambda environ, start_response: [b"x"], wsgi_environ(scope(), b""))


def test_the_app_runs_in_a_pool_thread_and_the_loop_sends_one_answer():
    ran_in = []

    def app(environ, start_response):
        ran_in.append(threading.current_thread())
        start_response("200 OK", [("Content-Length", "2")])
        return [b"o", b"k"]

    sent = []

    async def send(message):
        sent.append(message)

    async def main():
        bridge = WsgiInThreads(app, threads=2)
        await bridge(scope(), b"", send)
        bridge.pool.shutdown()
        return threading.current_thread()

    loop_thread = asyncio.run(main())
    assert ran_in and ran_in[0] is not loop_thread and ran_in[0].name.startswith("wsgi")
    assert sent == [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]},
        {"type": "http.response.body", "body": b"ok", "more_body": False},
    ]
