"""Figures the resilience tests measure (requests sent and failed, inputs tried, findings).

Each test calls `record(area, name, **figures)`. When RESILIENCE_FIGURES names a file (as
`make resilience-report` does), one JSON line per call is appended to it; tests/resilience/report.py
turns those lines into docs/resilience.md. Without it, figures are only kept in memory, so a
plain `make test` writes nothing outside pytest's tmp_path.
"""

from __future__ import annotations

import json
import os
import threading

FIGURES_ENV = "RESILIENCE_FIGURES"

_lock = threading.Lock()
recorded: list[dict] = []


def record(area: str, name: str, **figures) -> dict:
    entry = {"area": area, "name": name, **figures}
    with _lock:
        recorded.append(entry)
        path = os.environ.get(FIGURES_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry
