"""Per-version figures from the web UI's Prometheus metrics (its /metrics page).

The web UI counts every predict by the version and label that answered it (mnist_webui.metrics):
    webui_predictions_total{version, label, outcome}            outcome: ok | error
    webui_prediction_duration_seconds{version, label}           histogram
    webui_prediction_confidence{version, label}                 histogram of the top-class probability
Quantiles come from the histogram buckets, interpolated within a bucket as Prometheus's
histogram_quantile does.
"""

from __future__ import annotations

import collections
import math

from mnist_common.rollout.guard import VersionFigures

PREDICTIONS = "webui_predictions"
DURATION = "webui_prediction_duration_seconds"
CONFIDENCE = "webui_prediction_confidence"


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """q-quantile from cumulative (upper bound, count) buckets, +Inf last; None without data."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def figures_by_version(*expositions: str) -> dict[int, VersionFigures]:
    """Per-version figures summed over every exposition given (one per web UI pod): counts and
    histogram buckets add up, so quantiles and rates are those of all the pods' answers together."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = collections.Counter()
    errors = collections.Counter()
    duration_buckets: dict[int, dict[float, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    confidence_sum = collections.Counter()
    confidence_count = collections.Counter()
    families = (family for exposition in expositions for family in text_string_to_metric_families(exposition))
    for family in families:
        for sample in family.samples:
            raw_version = sample.labels.get("version", "")
            if not raw_version.isdigit():
                continue  # "unknown" / "other": not a version a person can promote
            version = int(raw_version)
            if sample.name == PREDICTIONS + "_total":
                requests[version] += sample.value
                if sample.labels.get("outcome") == "error":
                    errors[version] += sample.value
            elif sample.name == DURATION + "_bucket":
                duration_buckets[version][float(sample.labels["le"])] += sample.value
            elif sample.name == CONFIDENCE + "_sum":
                confidence_sum[version] += sample.value
            elif sample.name == CONFIDENCE + "_count":
                confidence_count[version] += sample.value
    figures = {}
    for version in requests:
        buckets = list(duration_buckets.get(version, {}).items())
        count = confidence_count[version]
        figures[version] = VersionFigures(
            requests=int(requests[version]),
            errors=int(errors[version]),
            p50_seconds=quantile(0.5, buckets),
            p95_seconds=quantile(0.95, buckets),
            mean_confidence=confidence_sum[version] / count if count else None,
        )
    return figures
