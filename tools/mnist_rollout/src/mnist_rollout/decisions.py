"""What each rollout command does to the state, and whether a canary may be promoted: pure
functions of their arguments, so every rule is tested without a server."""

from __future__ import annotations

import dataclasses

from mnist_common.rollout.state import RolloutState
from mnist_common.rollout.transitions import publish  # noqa: F401  (shared with mnist_deploy)


class RolloutRefused(ValueError):
    """A change that cannot be made; the message says why and what to do instead."""


def canary(state: RolloutState | None, version: int, percent: float, published: list[int]) -> RolloutState:
    if version not in published:
        shown = ", ".join(f"v{v}" for v in published) or "none"
        raise RolloutRefused(f"version {version} is not published (published: {shown})")
    if not 0 <= percent <= 100:
        raise RolloutRefused(f"PERCENT={percent:g} must be from 0 to 100")
    if state is None:
        raise RolloutRefused("there is no stable version yet: publish one first (make export)")
    if version == state.stable:
        raise RolloutRefused(f"v{version} is already the stable version")
    return dataclasses.replace(state, canary=version, canary_percent=percent)


def promote(state: RolloutState | None) -> RolloutState:
    if state is None or state.canary is None:
        raise RolloutRefused("there is no canary to promote (make canary VERSION=N first)")
    return RolloutState(stable=state.canary, previous_stable=state.stable, generation=state.generation)


def rollback(state: RolloutState | None, published: list[int]) -> RolloutState:
    """Undo the last change: drop the canary if there is one, else return to the previous stable."""
    if state is None:
        raise RolloutRefused("there is no rollout state to roll back")
    if state.canary is not None:
        return dataclasses.replace(state, canary=None, canary_percent=0)
    if state.previous_stable is None:
        raise RolloutRefused(f"nothing to roll back to: v{state.stable} is stable and no earlier stable is recorded")
    if state.previous_stable not in published:
        raise RolloutRefused(f"the previous stable v{state.previous_stable} is no longer published")
    return RolloutState(stable=state.previous_stable, generation=state.generation)


# ---- the promote guard ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VersionFigures:
    """One version's answers as the web UI's metrics count them."""

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
    """How much worse than stable a canary may be and still be promoted (loadtest/rollout.yaml)."""

    max_error_rate_increase: float = 0.01  # absolute: 0.01 = one percentage point
    max_p95_increase_ms: float = 50.0
    min_canary_requests: int = 20


def promote_objections(
    stable: VersionFigures | None, canary: VersionFigures | None, policy: PromotePolicy
) -> list[str]:
    """Every reason not to promote, each naming the figure; empty when the canary may go."""
    if canary is None or canary.requests < policy.min_canary_requests:
        seen = canary.requests if canary else 0
        return [f"canary requests: {seen} answered, fewer than the {policy.min_canary_requests} needed to judge it"]
    objections = []
    stable_rate = stable.error_rate if stable else 0.0
    if canary.error_rate > stable_rate + policy.max_error_rate_increase:
        objections.append(
            f"error rate: canary {canary.error_rate:.2%} vs stable {stable_rate:.2%}, "
            f"more than {policy.max_error_rate_increase:.2%} worse"
        )
    if stable and stable.p95_seconds is not None and canary.p95_seconds is not None:
        worse_ms = (canary.p95_seconds - stable.p95_seconds) * 1000
        if worse_ms > policy.max_p95_increase_ms:
            objections.append(
                f"p95 latency: canary {canary.p95_seconds * 1000:.1f} ms vs stable {stable.p95_seconds * 1000:.1f} ms, "
                f"more than {policy.max_p95_increase_ms:g} ms worse"
            )
    return objections
