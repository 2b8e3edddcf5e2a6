"""The order in which a rollout change reaches a running model server with no failed request.

TF Serving refuses a config whose label names a version that is not AVAILABLE yet, so a new
version is loaded first (labels unchanged), the labels move once it serves, then the web UI's
traffic split changes (the state file), and only when nothing asks for a retired version any more
is it dropped from the config and unloaded.
"""

from __future__ import annotations

import dataclasses

from mnist_common.rollout.model_config import ServerConfig, labels_for, server_config
from mnist_common.rollout.state import RolloutState


@dataclasses.dataclass(frozen=True)
class ApplyConfig:
    config: ServerConfig
    wait_for: str  # "loaded": every version AVAILABLE; "labels": each label names its version; "unloaded"


@dataclasses.dataclass(frozen=True)
class WriteState:
    state: RolloutState


@dataclasses.dataclass(frozen=True)
class Drain:
    versions: tuple[int, ...]  # wait until no request reaches these any more


Step = ApplyConfig | WriteState | Drain


def plan(old: RolloutState | None, new: RolloutState) -> list[Step]:
    if old is None:
        return [ApplyConfig(server_config(new), "labels"), WriteState(new)]
    both = tuple(sorted(set(old.versions) | set(new.versions)))
    steps: list[Step] = []
    if set(both) != set(old.versions):
        steps.append(ApplyConfig(ServerConfig(both, labels_for(old)), "loaded"))
    if labels_for(new) != labels_for(old):
        steps.append(ApplyConfig(ServerConfig(both, labels_for(new)), "labels"))
    steps.append(WriteState(new))
    retired = tuple(sorted(set(old.versions) - set(new.versions)))
    if retired:
        steps += [Drain(retired), ApplyConfig(server_config(new), "unloaded")]
    return steps
