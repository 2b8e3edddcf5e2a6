"""What each rollout command does to the state: pure functions of their arguments, so every rule
is tested without a server. Every publisher and every command uses these (the rollout tool's
make canary / promote / rollback, the deploy tool's publish after a cluster export).

    publish    a newly published version: the first becomes stable, a later one the canary
    canary     a published version as the canary at a share
    promote    the canary becomes stable (whether it may is guard.py's question)
    rollback   drop the canary, or return to the stable before the last promote
"""

from __future__ import annotations

import dataclasses

from mnist_common.rollout.state import RolloutState

# The share a newly published or canaried version gets unless told otherwise: declared here only
# (mk/65-rollout.mk's CANARY_PERCENT, the rollout tool's --percent and the deploy tool read it).
DEFAULT_CANARY_PERCENT = 10.0


def publish(state: RolloutState | None, version: int, canary_percent: float) -> RolloutState:
    """A newly published version: the first becomes stable, a later one the canary (never 100 %)."""
    if state is None:
        return RolloutState(stable=version)
    if version in state.versions:
        return state
    return dataclasses.replace(state, canary=version, canary_percent=canary_percent)


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
