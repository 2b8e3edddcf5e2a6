"""/metrics on a port of its own (METRICS_PORT), answered without the IAP check, and nowhere else.

Behind IAP every request but the health checks needs IAP's signed header; Managed Prometheus'
collector and the promote guard have none, so on the main port they got 401 (503 before
`make iap-audience`). The cluster's Service and Ingress route only the main port; the metrics
port is the container port named `metrics` (tests/deploy/test_web_ui_metrics_port_renders.py).
"""

from __future__ import annotations

import types

import pytest
import requests

from mnist_run.ports import free_port
from mnist_webui import create_app
from mnist_webui.config import ConfigError, Settings, settings_from_env
from tests.web_ui.webui_servers import WebUiServer

AUDIENCE = "/projects/123456/global/backendServices/987654"
METRICS_PORT = 9090


class NoKeys:
    """IAP's keys; a scrape on the metrics port must never need them."""

    def get(self, key_id):
        raise AssertionError("the IAP check ran")


@pytest.fixture(params=["audience", "closed"])
def behind_iap(request, fake_client, held_out):
    settings = (
        Settings(iap_audience=AUDIENCE, metrics_port=METRICS_PORT)
        if request.param == "audience"
        else Settings(iap_required=True, metrics_port=METRICS_PORT)
    )
    app = create_app(
        {
            "MNIST_SETTINGS": settings,
            "MNIST_CLIENT": fake_client,
            "MNIST_DIGITS": held_out,
            "TESTING": True,
            "MNIST_IAP_KEYS": NoKeys(),
        }
    )
    return app.test_client()


def on_port(port: int) -> dict:
    # What the server puts in SERVER_PORT: the port of the socket the request came in on.
    return {"environ_overrides": {"SERVER_PORT": str(port)}}


def test_the_metrics_port_answers_metrics_without_iap(behind_iap):
    answer = behind_iap.get("/metrics", **on_port(METRICS_PORT))
    assert answer.status_code == 200
    assert b"webui_http_requests_total" in answer.data


def test_the_metrics_port_serves_nothing_else(behind_iap):
    for path in ("/", "/api/v1/digits/0", "/healthz", "/metrics/"):
        answer = behind_iap.get(path, **on_port(METRICS_PORT))
        assert answer.status_code == 404, path
        assert answer.get_json()["status"] == 404
    assert behind_iap.post("/metrics", **on_port(METRICS_PORT)).status_code == 405


def test_the_main_port_no_longer_serves_metrics(behind_iap):
    assert behind_iap.get("/metrics", **on_port(8080)).status_code == 404
    # ... and still guards everything else behind IAP (401 without an assertion, or 503 closed).
    assert behind_iap.get("/", **on_port(8080)).status_code in (401, 503)
    assert behind_iap.get("/healthz", **on_port(8080)).status_code == 200


def test_without_a_metrics_port_metrics_stay_on_the_main_port(client):
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({"METRICS_PORT": "metrics"}, "METRICS_PORT='metrics' is not a valid int"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT=70000 is not a TCP port"),
        ({"METRICS_PORT": "8080", "UI_PORT": "8080"}, "METRICS_PORT=8080 must differ from UI_PORT"),
    ],
)
def test_a_bad_metrics_port_is_named(environ, error):
    with pytest.raises(ConfigError, match=error):
        settings_from_env(environ)


def test_gunicorn_listens_on_both_ports_and_splits_them(tmp_path, data_dir):
    # The model server is not needed for this: an address nothing listens on.
    nowhere = types.SimpleNamespace(
        model_name="mnist", grpc_address=f"127.0.0.1:{free_port()}", rest_url=f"http://127.0.0.1:{free_port()}"
    )
    server = WebUiServer(nowhere, data_dir, str(tmp_path / "gunicorn.log"))
    metrics_port = free_port()
    server.env.update(METRICS_PORT=str(metrics_port), IAP_REQUIRED="1")
    try:
        server.start()
        scrape = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert scrape.status_code == 200 and "webui_http_requests_total" in scrape.text
        assert requests.get(f"http://127.0.0.1:{metrics_port}/", timeout=5).status_code == 404
        assert requests.get(f"{server.url}/metrics", timeout=5).status_code == 404
        assert requests.get(f"{server.url}/", timeout=5).status_code == 503  # IAP, not configured
        # A Host header naming the metrics port changes nothing: the socket decides.
        spoofed = requests.get(f"{server.url}/metrics", headers={"Host": f"127.0.0.1:{metrics_port}"}, timeout=5)
        assert spoofed.status_code == 404
    finally:
        server.stop()
