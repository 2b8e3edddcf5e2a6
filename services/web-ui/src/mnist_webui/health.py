"""Probes and metrics: /healthz (the process is up), /readyz (this process can serve), /metrics."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from mnist_webui.extensions import webui

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    # The UI process only: it answers at once and asks nothing of the model server. Were it to
    # follow the model server, an outage there would take every UI pod out of the load balancer
    # and visitors would get the balancer's 502 instead of the page's banner and the API's 503.
    # What the UI last saw of the model server is reported, not acted on.
    gateway = webui().model
    seen = gateway.server_state_at
    return jsonify(
        {
            "status": "ready",
            "model_server": {
                "state": gateway.server_state,
                "seconds_since_last_call": None if seen is None else round(time.monotonic() - seen, 1),
            },
        }
    )


@bp.get("/metrics")
def metrics():
    # content_type, not mimetype: CONTENT_TYPE_LATEST carries its charset already.
    return Response(webui().metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
