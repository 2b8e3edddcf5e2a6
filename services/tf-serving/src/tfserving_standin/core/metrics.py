"""Prometheus metrics (prometheus-client), served on the REST port at the monitoring path.

Per model, version, API (predict, get_model_metadata, get_model_status, classify, regress) and
entrypoint (REST or GRPC): request count by status code, error count, latency; plus the sizes of
the batches the batcher forms, and which versions are available. Model names a client makes up
are counted as "_unknown" so they cannot grow the label set without bound.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, known_models):
        self._known = set(known_models)
        self.registry = CollectorRegistry()
        labels = ["model_name", "version", "api", "entrypoint"]
        self._requests = Counter(
            "tfserving_requests", "Requests answered, by status code", labels + ["status"], registry=self.registry
        )
        self._errors = Counter(
            "tfserving_request_errors", "Requests answered with an error", labels + ["status"], registry=self.registry
        )
        self._latency = Histogram(
            "tfserving_request_latency_seconds",
            "Time from request to answer",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._batch_size = Histogram(
            "tfserving_batch_size",
            "Rows per signature call formed by the batcher",
            ["model_name", "version", "signature"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self._available = Gauge(
            "tfserving_model_version_available",
            "1 while a version is AVAILABLE",
            ["model_name", "version"],
            registry=self.registry,
        )

    def observe(self, model_name: str, version, api: str, entrypoint: str, status: str, seconds: float) -> None:
        model = model_name if model_name in self._known else "_unknown"
        version_label = "" if version is None else str(version)
        self._requests.labels(model, version_label, api, entrypoint, status).inc()
        if status != "OK":
            self._errors.labels(model, version_label, api, entrypoint, status).inc()
        self._latency.labels(model, version_label, api, entrypoint).observe(seconds)

    def know(self, model_name: str) -> None:
        """A model added by a new model config is counted under its own name."""
        self._known.add(model_name)

    def batch_observer(self, model_name: str, version: int, signature: str):
        return self._batch_size.labels(model_name, str(version), signature).observe

    def set_available(self, model_name: str, version: int, available: bool) -> None:
        self._available.labels(model_name, str(version)).set(1 if available else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
