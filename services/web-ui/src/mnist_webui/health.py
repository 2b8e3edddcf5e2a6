"""Probes and metrics: /healthz (the process is up), /readyz (the model can answer), /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from mnist_webui.extensions import webui

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    # ApiError (503) propagates when the server cannot be reached; a reachable server without an
    # AVAILABLE version is just as unready.
    status = webui().model.status()
    if not status.is_available:
        states = ", ".join(f"{v.version}: {v.state}" for v in status.versions) or "no versions"
        body = {"status": "unready", "error": f"model '{status.model_name}' is not AVAILABLE ({states})"}
        return jsonify(body), 503
    return jsonify({"status": "ready", "model": status.to_dict()})


@bp.get("/metrics")
def metrics():
    return Response(webui().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)
