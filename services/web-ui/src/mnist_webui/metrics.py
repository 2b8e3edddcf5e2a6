"""Prometheus metrics per endpoint: requests, errors, latency; and the model server calls.

Each app has its own registry (tests create many apps). Under gunicorn with several workers,
gunicorn_conf sets PROMETHEUS_MULTIPROC_DIR so every worker's numbers are summed on /metrics
instead of showing whichever worker happened to answer the scrape.
"""

from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Top-class probability: fine near 1, where a good model's answers are.
CONFIDENCE_BUCKETS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
# At most this many distinct version values per process; later ones are counted as "other".
MAX_VERSION_VALUES = 8


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "webui_http_requests_total",
            "HTTP requests by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "webui_http_errors_total",
            "HTTP requests answered with a 4xx or 5xx status, by endpoint and status code.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "webui_http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_calls = Histogram(
            "webui_model_server_request_duration_seconds",
            "Round trip of model server calls as each request saw it (retries, and the wait for a shared predict call, included), by call and outcome.",
            ["call", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # What the UI knows of the model server, from its own calls: the UI stays ready (and shows
        # a banner) while the model server is down, so this is where an outage is seen.
        self.model_server_up = Gauge(
            "webui_model_server_up",
            "1 when the last call to the model server succeeded, 0 when it failed.",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )

        # Per answering version and label (stable | canary | none): what `make rollout-status`
        # and the promote guard compare (mnist_rollout.live_metrics reads these names).
        self.predictions = Counter(
            "webui_predictions",
            "Predictions by version, label and outcome (ok | error).",
            ["version", "label", "outcome"],
            registry=self.registry,
        )
        self.prediction_latency = Histogram(
            "webui_prediction_duration_seconds",
            "Model server round trip of a prediction, by version and label.",
            ["version", "label"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prediction_confidence = Histogram(
            "webui_prediction_confidence",
            "Probability of the predicted class, by version and label.",
            ["version", "label"],
            buckets=CONFIDENCE_BUCKETS,
            registry=self.registry,
        )
        self._versions_seen: set[str] = set()
        self._children: dict[tuple, object] = {}

    def child(self, metric, *values: str):
        """metric.labels(*values), kept: prometheus_client's labels() checks the values and takes
        a lock on every call, several times per request. The values come from closed sets, so
        the dict stays small; two threads racing on a new key get the same child from labels()."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def version_value(self, version: int | None) -> str:
        """A label value for a version, from a bounded set."""
        if version is None:
            return "unknown"
        value = str(int(version))
        if value not in self._versions_seen:
            if len(self._versions_seen) >= MAX_VERSION_VALUES:
                return "other"
            self._versions_seen.add(value)
        return value

    def observe_prediction(
        self, version: int | None, label: str | None, ok: bool, seconds: float, confidence: float | None
    ) -> None:
        version_value, label_value = self.version_value(version), label or "none"
        self.child(self.predictions, version_value, label_value, "ok" if ok else "error").inc()
        self.child(self.prediction_latency, version_value, label_value).observe(seconds)
        if confidence is not None:
            self.child(self.prediction_confidence, version_value, label_value).observe(confidence)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


# Label values come from closed sets only: anything a client may write (a method, a path) is
# mapped onto one of them, or every new spelling would be a new series kept forever.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


def _endpoint() -> str:
    # The route pattern, not the path: unknown paths must not create a label value each.
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def install(app: Flask) -> Metrics:
    """Time and count every request of `app`; /metrics itself is served by the health blueprint."""
    metrics = Metrics()

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def record(response):
        started = g.pop("request_started", None)
        endpoint = _endpoint()
        if started is not None:
            metrics.child(metrics.latency, endpoint).observe(time.perf_counter() - started)
        status = status_label(response.status_code)
        metrics.child(metrics.requests, endpoint, method_label(request.method), status).inc()
        if response.status_code >= 400:
            metrics.child(metrics.errors, endpoint, status).inc()
        return response

    return metrics
