"""The SLO checker: which endpoint missed which objective, and the exit code CI gates on."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import yaml

from mnist_loadtest import slo

HEADER = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
]


def stats_row(request_type, name, requests, failures, p95, rps):
    p95_text = "N/A" if p95 is None else str(p95)
    return [request_type, name, requests, failures, 10, 12, 1, 300, 100, rps, 0] + ["5"] * 5 + [p95_text] + ["9"] * 5


def write_stats(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return str(path)


OBJECTIVES = [
    slo.Objective("/api/v1/predict", "POST", p95_ms=100, max_error_rate=0.01, min_rps=5),
    slo.Objective("PredictionService/Predict", "grpc", p95_ms=50),
]


def test_all_objectives_met():
    stats = [
        slo.EndpointStats("POST", "/api/v1/predict", 1000, 5, 90, 20.0),
        slo.EndpointStats("grpc", "PredictionService/Predict", 100, 0, 50, 9.0),
    ]
    passed, verdicts = slo.check(OBJECTIVES, stats)
    assert passed
    assert all(v.passed for v in verdicts)


@pytest.mark.parametrize(
    "stats, expected",
    [
        (slo.EndpointStats("POST", "/api/v1/predict", 1000, 0, 140, 20.0), "p95 latency 140 ms > 100 ms"),
        (slo.EndpointStats("POST", "/api/v1/predict", 1000, 20, 90, 20.0), "error rate 2.00% (20/1000) > 1.00%"),
        (slo.EndpointStats("POST", "/api/v1/predict", 1000, 0, 90, 4.5), "throughput 4.50 req/s < 5 req/s"),
    ],
)
def test_each_missed_objective_is_named(stats, expected):
    passed, verdicts = slo.check(OBJECTIVES, [stats])
    assert not passed
    assert verdicts[0].misses == (expected,)
    assert f"FAIL  POST /api/v1/predict: {expected}" in slo.report(passed, verdicts)


def test_type_must_match_too():
    stats = [slo.EndpointStats("GET", "/api/v1/predict", 10, 10, 9000, 0.1)]
    passed, verdicts = slo.check(OBJECTIVES, stats)
    assert not passed  # nothing with an objective was exercised
    assert not any(v.exercised for v in verdicts)
    assert "nothing was measured" in slo.report(passed, verdicts)


def test_unexercised_endpoints_are_skipped_not_failed():
    stats = [
        slo.EndpointStats("grpc", "PredictionService/Predict", 100, 0, 20, 9.0),
        slo.EndpointStats("POST", "/api/v1/predict", 0, 0, None, 0.0),
    ]
    passed, verdicts = slo.check(OBJECTIVES, stats)
    assert passed
    assert "skip  POST /api/v1/predict: not exercised" in slo.report(passed, verdicts)


def test_objective_without_type_matches_the_aggregated_row():
    aggregated = slo.Objective("Aggregated", None, max_error_rate=0.0)
    passed, _ = slo.check([aggregated], [slo.EndpointStats("", "Aggregated", 10, 1, 5, 1.0)])
    assert not passed


@pytest.mark.parametrize(
    "document, message",
    [
        ({"endpoints": []}, "'endpoints' is empty"),
        ({"nope": 1}, "expected a mapping with an 'endpoints' list"),
        ({"endpoints": [{"type": "GET"}]}, "needs a 'name'"),
        ({"endpoints": [{"name": "/", "p95": 3}]}, "unknown keys ['p95']"),
        ({"endpoints": [{"name": "/", "p95_ms": -1}]}, "p95_ms must be a number >= 0"),
        ({"endpoints": [{"name": "/", "min_rps": "fast"}]}, "min_rps must be a number >= 0"),
        ({"endpoints": [{"name": "/"}]}, "no objective"),
    ],
)
def test_bad_objectives_are_named(document, message):
    with pytest.raises(slo.SloFileError) as error:
        slo.parse_objectives(document, "slo.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("slo.yaml")


def test_checked_in_objectives_parse(repo_root):
    objectives = slo.load_objectives(str(repo_root / "loadtest" / "slo.yaml"))
    labels = {o.label for o in objectives}
    assert {
        "POST /api/v1/predict",
        "GET /api/v1/sample",
        "GET /",
        "POST /v1/models/mnist:predict",
        "grpc PredictionService/Predict",
    } <= labels
    assert all(o.p95_ms and o.max_error_rate is not None and o.min_rps for o in objectives)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "mnist_loadtest.cli", "check-slo", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_exit_codes_and_messages(tmp_path):
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {"type": "POST", "name": "/api/v1/predict", "p95_ms": 100, "max_error_rate": 0.01, "min_rps": 1}
                ]
            }
        )
    )
    good = write_stats(
        tmp_path / "good_stats.csv",
        [stats_row("POST", "/api/v1/predict", 500, 0, 80, 50.0), stats_row("", "Aggregated", 500, 0, 80, 50.0)],
    )
    bad = write_stats(tmp_path / "bad_stats.csv", [stats_row("POST", "/api/v1/predict", 500, 100, 120, 50.0)])

    result = run_cli("--slo", str(slo_file), good)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "objectives met" in result.stdout

    result = run_cli("--slo", str(slo_file), bad)
    assert result.returncode == 1
    assert "FAIL  POST /api/v1/predict: p95 latency 120 ms > 100 ms" in result.stdout
    assert "FAIL  POST /api/v1/predict: error rate 20.00% (100/500) > 1.00%" in result.stdout

    result = run_cli("--slo", str(tmp_path / "missing.yaml"), good)
    assert result.returncode == 2 and "missing.yaml" in result.stderr

    not_stats = tmp_path / "x.csv"
    not_stats.write_text("a,b\n1,2\n")
    result = run_cli("--slo", str(slo_file), str(not_stats))
    assert result.returncode == 2 and "not a locust *_stats.csv" in result.stderr
