"""pytest plugin that records the figures of other areas' fault tests for docs/resilience.md.

Loaded only by `make resilience-report` (`-p tests.resilience.figures_plugin`), never by `make test`. It records each test's outcome and duration, and for tests
that drive traffic with a `Traffic` helper that counts requests and failures (tests/tf_serving's
version lifecycle tests) the requests sent and failed, without changing those tests.
"""

from __future__ import annotations

import tests.resilience.figures as figures

AREA = "faults (other areas' tests)"
_running = {"nodeid": ""}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        traffic = getattr(getattr(item, "module", None), "Traffic", None)
        if traffic is None or getattr(traffic, "_figures_recorded", False):
            continue
        original_exit = traffic.__exit__

        def recording_exit(self, *exc, _original=original_exit):
            result = _original(self, *exc)
            figures.record(AREA, _running["nodeid"], requests_sent=self.count, requests_failed=len(self.failures))
            return result

        traffic.__exit__ = recording_exit
        traffic._figures_recorded = True


def pytest_runtest_setup(item):
    _running["nodeid"] = item.nodeid


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        figures.record(AREA, report.nodeid, outcome=outcome, seconds=round(report.duration, 1))
