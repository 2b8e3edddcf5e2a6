"""/metrics on a port of its own (METRICS_PORT), for Managed Prometheus and the promote guard.

Behind IAP every request must carry IAP's signed header, which a scraper inside the cluster never
has. So in the cluster gunicorn listens on a second port that the Service, and so the Ingress,
never routes to, and NetworkPolicy admits only the metrics collector to it. Which port a request
came in on is the listening socket's (the WSGI SERVER_PORT, from the server's own address, not
from anything the client sends). On the metrics port only GET /metrics answers, before the IAP
check; on the main port /metrics is then 404, so it is served in one place only.
Without METRICS_PORT (make run, the tests) /metrics stays on the main port.
"""

from __future__ import annotations

from flask import Flask, request

from mnist_webui.errors import ApiError

METRICS_PATH = "/metrics"


def install(app: Flask, metrics_port: int) -> None:
    """Register the split; must come before the IAP hooks, which the metrics port skips."""
    if not metrics_port:
        return
    port = str(metrics_port)

    @app.before_request
    def metrics_on_their_own_port():
        on_metrics_port = request.environ.get("SERVER_PORT") == port
        if on_metrics_port and request.path == METRICS_PATH:
            if request.method not in ("GET", "HEAD"):
                raise ApiError(405, f"{METRICS_PATH} takes GET")
            # Answered here, so the request hooks after this one (IAP's) never see it.
            return app.view_functions["health.metrics"]()
        if on_metrics_port:
            raise ApiError(404, f"only {METRICS_PATH} is served on port {port}")
        if request.path == METRICS_PATH:
            raise ApiError(404, f"{METRICS_PATH} is served on the metrics port only")
        return None
