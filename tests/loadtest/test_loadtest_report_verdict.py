"""The objectives' verdict goes into locust's HTML report (mnist-loadtest check-slo --html)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnist_loadtest.report_verdict import ReportError, add_verdict, verdict_block

PAGE = "<!doctype html><html><head><title>Locust</title></head><body><div id='root'></div></body></html>"
STATS = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%\n"
    "POST,/api/v1/predict,100,{failures},20,22,5,90,300,{rps},0,20,22,24,25,30,{p95},60,70,80,90,90\n"
    ",Aggregated,100,{failures},20,22,5,90,300,{rps},0,20,22,24,25,30,{p95},60,70,80,90,90\n"
)


def test_the_verdict_is_on_top_and_a_second_check_replaces_it(tmp_path):
    report = tmp_path / "report.html"
    report.write_text(PAGE)
    add_verdict(str(report), verdict_block(False, "  FAIL  POST /api/v1/predict: p95 900 ms > 300 ms", "slo.yaml"))
    add_verdict(str(report), verdict_block(True, "  ok    POST /api/v1/predict: <p95> 20 ms", "slo.yaml"))
    page = report.read_text()
    assert page.index("objectives met") < page.index("<div id='root'>")
    assert "MISSED" not in page and page.count("mnist-slo-verdict") == 1
    assert "&lt;p95&gt;" in page  # the text is escaped
    assert list(tmp_path.iterdir()) == [report]  # no temporary file left


def test_a_file_that_is_no_report_is_refused_unchanged(tmp_path):
    report = tmp_path / "report.html"
    report.write_text("not html")
    with pytest.raises(ReportError, match="no <body>"):
        add_verdict(str(report), verdict_block(True, "", "slo.yaml"))
    assert report.read_text() == "not html"
    with pytest.raises(ReportError, match="cannot read"):
        add_verdict(str(tmp_path / "missing.html"), verdict_block(True, "", "slo.yaml"))


@pytest.mark.parametrize(
    ("failures", "p95", "verdict", "code"), [(0, 40, "objectives met", 0), (0, 900, "objectives MISSED", 1)]
)
def test_check_slo_writes_the_verdict_into_the_report(tmp_path, failures, p95, verdict, code):
    stats = tmp_path / "locust_stats.csv"
    stats.write_text(STATS.format(failures=failures, rps=5, p95=p95))
    slo = tmp_path / "slo.yaml"
    slo.write_text("endpoints:\n  - type: POST\n    name: /api/v1/predict\n    p95_ms: 300\n")
    report = tmp_path / "report.html"
    report.write_text(PAGE)
    done = subprocess.run(
        [sys.executable, "-m", "mnist_loadtest.cli", "check-slo", "--slo", str(slo), "--html", str(report), str(stats)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code, done.stdout + done.stderr
    assert verdict in report.read_text()
