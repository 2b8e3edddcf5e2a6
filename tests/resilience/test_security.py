"""Nobody in where they do not belong: no request makes a server connect to an address of the
requester's choosing, no path escapes a file-serving route, and every page of the web UI carries
the secure headers."""

from __future__ import annotations

import base64
import http.client
import socket
import threading
import urllib.parse

import pytest
import requests

from tests.resilience.figures import record
from tests.web_ui import webui_fakes as fakes

pytestmark = pytest.mark.slow


class Canary:
    """A loopback listener that counts every connection made to it."""

    def __init__(self):
        self.connections = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            client.close()

    def close(self):
        self._listener.close()


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


def raw_request(port: int, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""):
    """A request sent exactly as written (no client-side normalisation of the path)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()  # names are case-insensitive
    finally:
        connection.close()


def address_tricks(canary_port: int) -> list[tuple[str, str, dict, bytes]]:
    """(method, request target, headers, body): every way a request could name an address."""
    url = f"http://127.0.0.1:{canary_port}/x.png"
    here = f"127.0.0.1:{canary_port}"
    forwarding = {
        "Host": here,
        "X-Forwarded-Host": here,
        "X-Forwarded-For": "127.0.0.1",
        "Forwarded": f"host={here}",
        "X-Original-URL": url,
        "X-Rewrite-URL": url,
        "Referer": url,
        "Origin": f"http://{here}",
    }
    return [
        ("GET", f"/?server={here}&url={url}&grpc={here}", {}, b""),
        ("GET", f"http://{here}/api/v1/model", {}, b""),  # absolute-form request target
        ("GET", "/api/v1/model", forwarding, b""),
        ("GET", "/readyz", forwarding, b""),
        (
            "POST",
            "/api/v1/predict",
            {"Content-Type": "application/json", **forwarding},
            f'{{"image": "{url}"}}'.encode(),
        ),
        (
            "POST",
            "/api/v1/predict",
            {"Content-Type": "application/json"},
            f'{{"image": "data:text/uri-list;base64,{base64.b64encode(url.encode()).decode()}"}}'.encode(),
        ),
        (
            "POST",
            "/api/v1/predict",
            {"Content-Type": "application/json"},
            f'{{"pixels": [0], "server": "{here}", "rest_url": "{url}", "grpc_address": "{here}"}}'.encode(),
        ),
        ("POST", f"/v1/models/{here}:predict", {"Content-Type": "application/json"}, b'{"instances": [1]}'),
        (
            "POST",
            "/v1/models/mnist:predict",
            {"Content-Type": "application/json", **forwarding},
            f'{{"signature_name": "{url}", "instances": [{{"b64": "{base64.b64encode(url.encode()).decode()}"}}]}}'.encode(),
        ),
        ("GET", f"/v1/models/mnist/labels/{here.replace(':', '%3A')}", forwarding, b""),
        ("GET", f"http://{here}/v1/models/mnist", {}, b""),
    ]


def test_no_request_makes_a_server_connect_to_an_address_of_the_requesters_choosing(stack, canary):
    sent = 0
    for port in (stack.web.port, stack.standin.rest_port):
        for method, target, headers, body in address_tricks(canary.port):
            status, _, answer = raw_request(port, method, target, headers, body)
            sent += 1
            assert status < 500, (port, target, status, answer[:200])
    record(
        "security",
        "requests naming an address (query, absolute URI, forwarding headers, bodies)",
        requests_sent=sent,
        connections_to_the_named_address=canary.connections,
    )
    assert canary.connections == 0


TRAVERSALS = [
    "/static/../app.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%5capp.py",
    "/static/....//....//app.py",
    "/static//etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/static/app.css/../../app.py",
    "/static/%252e%252e/app.py",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "//etc/passwd",
    "/static/..;/app.py",
    "/static/%c0%ae%c0%ae/app.py",
    "/api/v1/../../../../etc/passwd",
]
# What would show a file outside the static folder: Python source, the system's users, TOML.
LEAKS = (b"import ", b"root:x:0:0", b"[project]", b"def create_app")


@pytest.mark.parametrize("server", ["web UI", "model server"])
def test_no_path_escapes_a_file_serving_route(stack, server):
    port = stack.web.port if server == "web UI" else stack.standin.rest_port
    statuses = []
    for target in TRAVERSALS:
        status, headers, body = raw_request(port, "GET", target)
        if status in (301, 308):  # werkzeug merges "//": the redirect must stay here, and lead nowhere
            location = urllib.parse.urlsplit(headers["Location"])
            assert location.netloc in ("", f"127.0.0.1:{port}") and ".." not in location.path, headers["Location"]
            status, _, body = raw_request(port, "GET", location.path)
        statuses.append(status)
        assert status in (400, 404, 405), (target, status, body[:200])
        assert not any(leak in body for leak in LEAKS), (target, body[:300])
    # The route is there and serves its own files.
    if server == "web UI":
        assert requests.get(f"{stack.web.url}/static/app.css", timeout=10).status_code == 200
    record(
        "security",
        f"{server}: path traversal attempts",
        requests_sent=len(TRAVERSALS),
        files_leaked=0,
        statuses=sorted(set(statuses)),
    )


def every_web_ui_page(data_dir) -> list[str]:
    """Every GET route of the app without parameters, a static file, and error pages."""
    from mnist_webui import create_app
    from mnist_webui.config import Settings
    from mnist_webui.samples import HeldOutDigits

    app = create_app(
        {
            "MNIST_SETTINGS": Settings(data_dir=data_dir),
            "MNIST_CLIENT": fakes.FakeServingClient(),
            "MNIST_DIGITS": HeldOutDigits.load(data_dir),
        }
    )
    pages = sorted(rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and not rule.arguments)
    return pages + ["/static/app.js", "/static/favicon.svg", "/no-such-page", "/api/v1/no-such-endpoint"]


def test_every_web_ui_page_has_the_secure_headers(stack, data_dir):
    pages = every_web_ui_page(data_dir)
    assert {"/", "/api/v1/predict", "/healthz", "/metrics"} & set(pages)
    answers = [(page, requests.get(f"{stack.web.url}{page}", timeout=10)) for page in pages]
    answers.append(
        ("POST /api/v1/predict (415)", requests.post(f"{stack.web.url}/api/v1/predict", data=b"x", timeout=10))
    )
    answers.append(("POST / (405)", requests.post(f"{stack.web.url}/", timeout=10)))
    for page, response in answers:
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, page
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, page
        assert headers.get("X-Content-Type-Options") == "nosniff", page
        assert headers.get("X-Frame-Options") == "DENY", page
    record("security", "web UI pages checked for CSP, nosniff and frame denial", pages_checked=len(answers))
