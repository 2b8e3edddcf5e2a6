"""The one rollout transition every publisher shares: a newly published version becomes stable
if it is the first, else the canary. The rollout tool (make export, make canary) and the deploy
tool (a model exported in the cluster) both apply it, so it lives below both."""

from __future__ import annotations

import dataclasses

from mnist_common.rollout.state import RolloutState


def publish(state: RolloutState | None, version: int, canary_percent: float) -> RolloutState:
    """A newly published version: the first becomes stable, a later one the canary (never 100 %)."""
    if state is None:
        return RolloutState(stable=version)
    if version in state.versions:
        return state
    return dataclasses.replace(state, canary=version, canary_percent=canary_percent)
