"""How the release is going, from this app's own prediction metrics (mnist_webui.metrics).

A sampler thread reads the per-version totals every LIVE_SAMPLE_SECONDS (all gunicorn workers'
figures, through the multiprocess collector when there are several) and keeps the last
WINDOW_SECONDS of them; each step between two samples becomes one point per version: requests
per second, error rate, p50 and p95 latency, and mean top-class confidence. Nothing here is on
the predict path: the sampler reads counters the predicts already keep.

The promote guard's verdict (mnist_common.rollout.guard) is judged from the totals since the
app started, the figures `make promote` compares for the same app.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import threading
import time

from prometheus_client import CollectorRegistry, multiprocess

from mnist_common.rollout import guard
from mnist_webui.metrics import Metrics

WINDOW_SECONDS = 300.0
PREDICTIONS = "webui_predictions_total"
DURATION_BUCKET = "webui_prediction_duration_seconds_bucket"
CONFIDENCE_SUM = "webui_prediction_confidence_sum"
CONFIDENCE_COUNT = "webui_prediction_confidence_count"


@dataclasses.dataclass
class Totals:
    """One version's counters since the app started (every label and worker summed)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = dataclasses.field(default_factory=dict)  # upper bound -> cumulative count
    confidence_sum: float = 0.0
    confidence_count: float = 0.0


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of cumulative histogram buckets, interpolated linearly within its bucket
    as Prometheus's histogram_quantile() does; None without observations."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the last finite bucket: its bound is all that is known
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _families(metrics: Metrics):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return multiprocess.MultiProcessCollector(CollectorRegistry()).collect()
    return metrics.registry.collect()


def read_totals(metrics: Metrics) -> dict[int, Totals]:
    totals: dict[int, Totals] = collections.defaultdict(Totals)
    for family in _families(metrics):
        for sample in family.samples:
            raw = sample.labels.get("version", "")
            if not raw.isdigit():
                continue  # "unknown" / "other": not one version
            version = totals[int(raw)]
            if sample.name == PREDICTIONS:
                version.requests += sample.value
                if sample.labels.get("outcome") == "error":
                    version.errors += sample.value
            elif sample.name == DURATION_BUCKET:
                bound = float(sample.labels["le"])
                version.buckets[bound] = version.buckets.get(bound, 0.0) + sample.value
            elif sample.name == CONFIDENCE_SUM:
                version.confidence_sum += sample.value
            elif sample.name == CONFIDENCE_COUNT:
                version.confidence_count += sample.value
    return dict(totals)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def point(before: Totals | None, after: Totals, seconds: float) -> dict:
    """The figures of the step between two samples of one version."""
    before = before or Totals()
    requests = after.requests - before.requests
    errors = after.errors - before.errors
    buckets = {bound: count - before.buckets.get(bound, 0.0) for bound, count in after.buckets.items()}
    answered = after.confidence_count - before.confidence_count
    return {
        "requests": int(round(requests)),
        "rps": round(requests / seconds, 3) if seconds > 0 else None,
        "error_rate": round(errors / requests, 6) if requests > 0 else None,
        "p50_ms": _ms(quantile(0.5, buckets)),
        "p95_ms": _ms(quantile(0.95, buckets)),
        "mean_confidence": round((after.confidence_sum - before.confidence_sum) / answered, 6)
        if answered > 0
        else None,
    }


def figures(totals: Totals) -> guard.VersionFigures:
    return guard.VersionFigures(
        requests=int(round(totals.requests)),
        errors=int(round(totals.errors)),
        p50_seconds=quantile(0.5, totals.buckets),
        p95_seconds=quantile(0.95, totals.buckets),
        mean_confidence=totals.confidence_sum / totals.confidence_count if totals.confidence_count else None,
    )


def figures_json(found: guard.VersionFigures | None) -> dict | None:
    if found is None:
        return None
    return {
        "requests": found.requests,
        "errors": found.errors,
        "error_rate": round(found.error_rate, 6),
        "p50_ms": _ms(found.p50_seconds),
        "p95_ms": _ms(found.p95_seconds),
        "mean_confidence": None if found.mean_confidence is None else round(found.mean_confidence, 6),
    }


def verdict_json(state, totals: dict[int, Totals], policy: guard.PromotePolicy) -> dict:
    """The promote guard's verdict on the canary, with every figure it compares."""
    policy_json = dataclasses.asdict(policy)
    if state is None or state.canary is None:
        return {
            "applies": False,
            "summary": "no canary is running: there is nothing to promote",
            "policy": policy_json,
        }
    stable = figures(totals[state.stable]) if state.stable in totals else None
    canary = figures(totals[state.canary]) if state.canary in totals else None
    verdict = guard.judge(stable, canary, policy, state.stable, state.canary)
    return {
        "applies": True,
        "allowed": verdict.allowed,
        "summary": (
            f"v{state.canary} may be promoted over v{state.stable}"
            if verdict.allowed
            else f"v{state.canary} would not be promoted over v{state.stable} now"
        ),
        "stable_version": state.stable,
        "canary_version": state.canary,
        "stable": figures_json(stable),
        "canary": figures_json(canary),
        "comparisons": [
            {
                "figure": c.figure,
                "canary": c.canary,
                "stable": c.stable,
                "limit": c.limit,
                "passed": c.passed,
                "text": c.text,
            }
            for c in verdict.comparisons
        ],
        "policy": policy_json,
    }


class LiveFigures:
    """The sampled per-version totals of one app; the sampler starts with the first reader."""

    def __init__(self, metrics: Metrics, sample_seconds: float, clock=time.time):
        self.metrics = metrics
        self.sample_seconds = sample_seconds
        self._clock = clock
        self._samples: collections.deque[tuple[float, dict[int, Totals]]] = collections.deque(
            maxlen=max(2, int(WINDOW_SECONDS / sample_seconds) + 1)
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        taken = (self._clock(), read_totals(self.metrics))
        with self._lock:
            self._samples.append(taken)

    def _run(self) -> None:
        while True:
            time.sleep(self.sample_seconds)
            self.sample()

    def ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            # Started in the process that serves (a gunicorn worker, after its fork).
            self._thread = threading.Thread(target=self._run, name="live-figures", daemon=True)
            self._thread.start()
        self.sample()

    def series(self) -> dict[int, list[dict]]:
        """Per version, a point per step between consecutive samples, oldest first."""
        with self._lock:
            samples = list(self._samples)
        series: dict[int, list[dict]] = {}
        for (before_at, before), (after_at, after) in zip(samples, samples[1:], strict=False):
            for version, totals in after.items():
                entry = point(before.get(version), totals, after_at - before_at)
                entry["t"] = round(after_at, 3)
                series.setdefault(version, []).append(entry)
        return series

    def latest_totals(self) -> dict[int, Totals]:
        with self._lock:
            return self._samples[-1][1] if self._samples else {}
