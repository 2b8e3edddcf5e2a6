"""Service-level objectives for a locust run: which endpoint missed which objective.

The objectives file (loadtest/slo.yaml) lists, per endpoint (locust's request type and name):
  p95_ms          95th percentile latency, at most (milliseconds)
  max_error_rate  failed requests / requests, at most (0.01 = 1 %)
  min_rps         requests per second over the run, at least
The statistics come from locust's <prefix>_stats.csv (--csv <prefix>). An endpoint the run did
not exercise (its user class was not selected) is listed but not judged; a run that exercised
none of the endpoints fails, since it proved nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

OBJECTIVE_KEYS = ("p95_ms", "max_error_rate", "min_rps")


class SloFileError(ValueError):
    """The objectives or statistics file cannot be used; the message names it."""


@dataclass(frozen=True)
class Objective:
    name: str
    request_type: str | None  # None: any type (e.g. locust's "Aggregated" row)
    p95_ms: float | None = None
    max_error_rate: float | None = None
    min_rps: float | None = None

    @property
    def label(self) -> str:
        return f"{self.request_type} {self.name}" if self.request_type else self.name


@dataclass(frozen=True)
class EndpointStats:
    request_type: str
    name: str
    requests: int
    failures: int
    p95_ms: float | None  # None when there were no requests
    rps: float

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    objective: Objective
    stats: EndpointStats | None
    misses: tuple[str, ...]  # one sentence per missed objective

    @property
    def exercised(self) -> bool:
        return self.stats is not None and self.stats.requests > 0

    @property
    def passed(self) -> bool:
        return self.exercised and not self.misses


def parse_objectives(document: object, source: str = "objectives") -> list[Objective]:
    if not isinstance(document, dict) or not isinstance(document.get("endpoints"), list):
        raise SloFileError(f"{source}: expected a mapping with an 'endpoints' list")
    objectives = []
    for position, entry in enumerate(document["endpoints"], start=1):
        where = f"{source}: endpoint #{position}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SloFileError(f"{where}: needs a 'name' (locust's request name)")
        unknown = set(entry) - {"name", "type", *OBJECTIVE_KEYS}
        if unknown:
            raise SloFileError(
                f"{where} ({entry['name']}): unknown keys {sorted(unknown)}; allowed: type, {', '.join(OBJECTIVE_KEYS)}"
            )
        values = {}
        for key in OBJECTIVE_KEYS:
            if key in entry:
                value = entry[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise SloFileError(f"{where} ({entry['name']}): {key} must be a number >= 0, got {value!r}")
                values[key] = float(value)
        if not values:
            raise SloFileError(
                f"{where} ({entry['name']}): no objective; give at least one of {', '.join(OBJECTIVE_KEYS)}"
            )
        objectives.append(Objective(name=entry["name"], request_type=entry.get("type"), **values))
    if not objectives:
        raise SloFileError(f"{source}: 'endpoints' is empty")
    return objectives


def load_objectives(path: str) -> list[Objective]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as error:
        raise SloFileError(f"{path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SloFileError(f"{path}: not valid YAML ({error})") from None
    return parse_objectives(document, path)


def _number(text: str) -> float | None:
    text = (text or "").strip()
    if text in ("", "N/A"):
        return None
    return float(text)


def parse_stats(rows: Iterable[dict[str, str]], source: str = "stats") -> list[EndpointStats]:
    stats = []
    for row in rows:
        try:
            stats.append(
                EndpointStats(
                    request_type=row["Type"],
                    name=row["Name"],
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    p95_ms=_number(row["95%"]),
                    rps=float(row["Requests/s"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SloFileError(f"{source}: not a locust *_stats.csv ({type(error).__name__}: {error})") from None
    return stats


def load_stats(path: str) -> list[EndpointStats]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return parse_stats(csv.DictReader(handle), path)
    except OSError as error:
        raise SloFileError(f"{path}: {error.strerror}") from None


def _find(objective: Objective, stats: list[EndpointStats]) -> EndpointStats | None:
    for entry in stats:
        if entry.name == objective.name and objective.request_type in (None, entry.request_type):
            return entry
    return None


def judge(objective: Objective, stats: EndpointStats | None) -> Verdict:
    if stats is None or stats.requests == 0:
        return Verdict(objective, stats, ())
    misses = []
    if objective.p95_ms is not None and (stats.p95_ms is None or stats.p95_ms > objective.p95_ms):
        misses.append(f"p95 latency {stats.p95_ms:g} ms > {objective.p95_ms:g} ms")
    if objective.max_error_rate is not None and stats.error_rate > objective.max_error_rate:
        misses.append(
            f"error rate {stats.error_rate:.2%} ({stats.failures}/{stats.requests}) > {objective.max_error_rate:.2%}"
        )
    if objective.min_rps is not None and stats.rps < objective.min_rps:
        misses.append(f"throughput {stats.rps:.2f} req/s < {objective.min_rps:g} req/s")
    return Verdict(objective, stats, tuple(misses))


def check(objectives: list[Objective], stats: list[EndpointStats]) -> tuple[bool, list[Verdict]]:
    """(passed, verdicts): passed when every exercised objective holds and at least one was exercised."""
    verdicts = [judge(objective, _find(objective, stats)) for objective in objectives]
    exercised = [v for v in verdicts if v.exercised]
    return bool(exercised) and all(v.passed for v in exercised), verdicts


def report(passed: bool, verdicts: list[Verdict]) -> str:
    lines = []
    for verdict in verdicts:
        label = verdict.objective.label
        if not verdict.exercised:
            lines.append(f"  skip  {label}: not exercised by this run")
        elif verdict.misses:
            lines.extend(f"  FAIL  {label}: {miss}" for miss in verdict.misses)
        else:
            s = verdict.stats
            lines.append(f"  ok    {label}: p95 {s.p95_ms:g} ms, errors {s.error_rate:.2%}, {s.rps:.1f} req/s")
    if not any(v.exercised for v in verdicts):
        lines.append("  FAIL  no endpoint with an objective was exercised: nothing was measured")
    lines.append("objectives met" if passed else "objectives MISSED")
    return "\n".join(lines)
