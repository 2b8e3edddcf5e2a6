"""The promote guard's decision: may the canary be promoted, given per-version figures?

Pure: the figures come from whoever can see them (the rollout tool sums the web UI pods'
metrics, the web UI's /model page shows its own), and the verdict carries every figure it
compared, so a page and the command line print the same lines whichever way it goes.

The margins are declared here once (PromotePolicy); loadtest/rollout.yaml may override them:

promote:
  max_error_rate_increase: 0.01   # canary error rate at most 1 point above stable's
  max_p95_increase_ms: 50         # canary p95 at most 50 ms above stable's
  min_canary_requests: 20         # fewer canary answers than this: too early to judge
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class VersionFigures:
    """One version's answers as the web UI's metrics count them (summed over every pod)."""

    requests: int
    errors: int
    p50_seconds: float | None
    p95_seconds: float | None
    mean_confidence: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclasses.dataclass(frozen=True)
class PromotePolicy:
    """How much worse than stable a canary may be and still be promoted."""

    max_error_rate_increase: float = 0.01  # absolute: 0.01 = one percentage point
    max_p95_increase_ms: float = 50.0
    min_canary_requests: int = 20


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One figure compared: the canary's, the stable's, and the most the canary may have."""

    figure: str  # "canary requests" | "error rate" | "p95 latency"
    canary: float | None
    stable: float | None
    limit: float | None  # None: not compared (a figure is missing)
    passed: bool
    text: str  # one line a person reads: the figures and the rule


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether the canary may be promoted, and every comparison behind that answer."""

    stable_version: int | None
    canary_version: int | None
    stable: VersionFigures | None
    canary: VersionFigures | None
    policy: PromotePolicy
    comparisons: tuple[Comparison, ...]

    @property
    def allowed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def objections(self) -> list[str]:
        """The failed comparisons' lines; empty when the canary may go."""
        return [c.text for c in self.comparisons if not c.passed]

    def lines(self) -> list[str]:
        """Every comparison, marked: what a person sees whether the promote goes or not."""
        return [f"{'ok ' if c.passed else 'NO '} {c.text}" for c in self.comparisons]


def judge(
    stable: VersionFigures | None,
    canary: VersionFigures | None,
    policy: PromotePolicy,
    stable_version: int | None = None,
    canary_version: int | None = None,
) -> Verdict:
    """The verdict on promoting `canary` over `stable` (figures None: the version answered nothing)."""
    seen = canary.requests if canary else 0
    enough = seen >= policy.min_canary_requests
    comparisons = [
        Comparison(
            "canary requests",
            seen,
            stable.requests if stable else 0,
            policy.min_canary_requests,
            enough,
            f"canary requests: {seen} answered"
            + (
                f", at least the {policy.min_canary_requests} needed to judge it"
                if enough
                else f", fewer than the {policy.min_canary_requests} needed to judge it"
            ),
        )
    ]
    if enough:
        comparisons.append(_error_rate(stable, canary, policy))
        comparisons.append(_p95(stable, canary, policy))
    return Verdict(stable_version, canary_version, stable, canary, policy, tuple(comparisons))


def _error_rate(stable: VersionFigures | None, canary: VersionFigures, policy: PromotePolicy) -> Comparison:
    stable_rate = stable.error_rate if stable else 0.0
    limit = stable_rate + policy.max_error_rate_increase
    passed = canary.error_rate <= limit
    return Comparison(
        "error rate",
        canary.error_rate,
        stable_rate,
        limit,
        passed,
        f"error rate: canary {canary.error_rate:.2%} ({canary.errors} of {canary.requests}) vs stable "
        f"{stable_rate:.2%}"
        + (f" ({stable.errors} of {stable.requests})" if stable else " (no answers)")
        + (", within " if passed else ", more than ")
        + f"{policy.max_error_rate_increase:.2%} worse",
    )


def _p95(stable: VersionFigures | None, canary: VersionFigures, policy: PromotePolicy) -> Comparison:
    if stable is None or stable.p95_seconds is None or canary.p95_seconds is None:
        return Comparison(
            "p95 latency",
            None if canary.p95_seconds is None else canary.p95_seconds * 1000,
            None if stable is None or stable.p95_seconds is None else stable.p95_seconds * 1000,
            None,
            True,
            "p95 latency: not compared (no latency figures for "
            + ("stable" if stable is None or stable.p95_seconds is None else "the canary")
            + ")",
        )
    canary_ms, stable_ms = canary.p95_seconds * 1000, stable.p95_seconds * 1000
    limit = stable_ms + policy.max_p95_increase_ms
    passed = canary_ms - stable_ms <= policy.max_p95_increase_ms
    return Comparison(
        "p95 latency",
        canary_ms,
        stable_ms,
        limit,
        passed,
        f"p95 latency: canary {canary_ms:.1f} ms vs stable {stable_ms:.1f} ms"
        + (", within " if passed else ", more than ")
        + f"{policy.max_p95_increase_ms:g} ms worse",
    )


def promote_objections(
    stable: VersionFigures | None, canary: VersionFigures | None, policy: PromotePolicy
) -> list[str]:
    """Every reason not to promote, each naming the figure; empty when the canary may go."""
    return judge(stable, canary, policy).objections


# ---- the margins from a file --------------------------------------------------------------------


class PolicyError(ValueError):
    """The policy file cannot be used; the message names it and the field."""


def policy_from_mapping(data, source: str) -> PromotePolicy:
    """The margins from a parsed policy file ({"promote": {...}}); unnamed margins keep their default."""
    section = data.get("promote", {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise PolicyError(f"{source}: expected a mapping 'promote:'")
    known = {field.name for field in dataclasses.fields(PromotePolicy)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise PolicyError(f"{source}: unknown promote field(s) {', '.join(unknown)}")
    values = {}
    for name, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PolicyError(f"{source}: promote.{name} must be a number >= 0, not {value!r}")
        values[name] = int(value) if name == "min_canary_requests" else float(value)
    return PromotePolicy(**values)


def load_policy(path: str | None) -> PromotePolicy:
    """The margins in the YAML file `path` (loadtest/rollout.yaml); the defaults without one."""
    if not path:
        return PromotePolicy()
    import yaml  # mnist-common[rollout]; only a reader of the file needs it

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from None
    return policy_from_mapping(data, path)
