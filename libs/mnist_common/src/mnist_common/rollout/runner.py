"""Carrying out a rollout plan (steps.py) against running model servers, each step bounded.

One runner for both homes of the state: a `Store` writes the model server's config and the web
UI's split (local files, or the ConfigMap model-rollout), and `Servers` reports what every model
server replica does (one local process, or each TF Serving pod). A step that changes the config
is done when EVERY replica reports it: the versions AVAILABLE, each label naming its version, the
retired versions unloaded. A drain is done when no predict, classify or regress has reached the
retired versions for quiet_seconds: status and metadata calls never hold it. A step that does not
happen in time raises RolloutTimeout naming what was last seen instead (the replica, the state,
or the counter that still moves).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

from mnist_common.rollout.model_config import ServerConfig
from mnist_common.rollout.state import RolloutState
from mnist_common.rollout.steps import ApplyConfig, Drain, Step, WriteState

# server.cc's log line for a config ReloadConfig refused, where a stuck step's reason is found.
REFUSAL_LOG = "PollFilesystemAndReloadConfig failed to ReloadConfig"


class RolloutTimeout(RuntimeError):
    """A step did not take effect in time; the message says which and what was seen instead."""


class Store(Protocol):
    """Where the rollout is written: TF Serving's models.config and the web UI's rollout.json."""

    where: str  # for messages: the file or the ConfigMap

    def write_config(self, config: ServerConfig) -> None: ...
    def write_state(self, state: RolloutState, previous: RolloutState | None) -> RolloutState: ...


class Servers(Protocol):
    """What the model server replicas report; a replica that does not answer is left out of none:
    it counts as not done."""

    def version_states(self) -> dict[str, dict[int, str]]: ...  # replica -> {version: state}
    def label_versions(self, labels: tuple[str, ...]) -> dict[str, dict[str, int | None]]: ...
    def predict_counts(self) -> dict[str, float]: ...  # counter name -> value, predicts only


@dataclasses.dataclass
class Limits:
    timeout_seconds: float = 90.0  # each step
    quiet_seconds: float = 3.0  # a retired version unasked for this long is unloaded
    poll_seconds: float = 0.2


def _wait(what: str, condition: Callable[[], bool], limits: Limits, still: Callable[[], str], where: str) -> None:
    deadline = time.monotonic() + limits.timeout_seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass  # a replica restarting or busy: look again (requests' errors are OSErrors)
        time.sleep(limits.poll_seconds)
    try:
        seen = still()
    except OSError as error:
        seen = f"no answer ({error})"
    raise RolloutTimeout(
        f"{what} did not happen within {limits.timeout_seconds:g} s: {seen}; the model server's log says "
        f"why (a refused {where} is logged as '{REFUSAL_LOG}')"
    )


def _describe_states(servers: Servers) -> str:
    return "; ".join(
        f"{replica}: " + (", ".join(f"v{v} {s}" for v, s in sorted(states.items())) or "no versions")
        for replica, states in sorted(servers.version_states().items())
    )


def wait_applied(servers: Servers, step: ApplyConfig, limits: Limits, where: str) -> None:
    config = step.config
    if step.wait_for == "loaded":
        _wait(
            f"loading v{', v'.join(map(str, config.versions))} on every replica",
            lambda: _every(servers.version_states(), lambda s: all(s.get(v) == "AVAILABLE" for v in config.versions)),
            limits,
            lambda: _describe_states(servers),
            where,
        )
    elif step.wait_for == "labels":
        wanted = config.label_map
        _wait(
            "moving the labels to " + ", ".join(f"{k}=v{v}" for k, v in config.labels) + " on every replica",
            lambda: _every(servers.label_versions(tuple(wanted)), lambda labels: labels == wanted),
            limits,
            lambda: "; ".join(
                f"{replica}: " + ", ".join(f"{k}=v{v}" for k, v in sorted(labels.items()))
                for replica, labels in sorted(servers.label_versions(tuple(wanted)).items())
            ),
            where,
        )
    else:
        _wait(
            "unloading the retired versions on every replica",
            lambda: _every(
                servers.version_states(),
                lambda s: all(state != "AVAILABLE" for v, state in s.items() if v not in config.versions),
            ),
            limits,
            lambda: _describe_states(servers),
            where,
        )


def _every(per_replica: dict, check) -> bool:
    return bool(per_replica) and all(check(value) for value in per_replica.values())


def wait_drained(servers: Servers, versions: tuple[int, ...], limits: Limits, where: str) -> None:
    """Until no predict has reached `versions` for quiet_seconds; the time-out names the counter
    that still moves."""
    wanted = {str(v) for v in versions}

    def counts() -> dict[str, float]:
        return {name: value for name, value in servers.predict_counts().items() if _version_of(name) in wanted}

    last = counts()
    quiet_since = time.monotonic()
    moved: dict[str, tuple[float, float]] = {}

    def quiet() -> bool:
        nonlocal last, quiet_since
        now = counts()
        if now != last:
            for name, value in now.items():
                if value != last.get(name, 0.0):
                    moved[name] = (moved.get(name, (last.get(name, 0.0), 0.0))[0], value)
            last, quiet_since = now, time.monotonic()
        return time.monotonic() - quiet_since >= limits.quiet_seconds

    def still_moving() -> str:
        return "still moving: " + ", ".join(f"{name} {a:g} -> {b:g}" for name, (a, b) in sorted(moved.items()))

    _wait(f"the last predicts to v{', v'.join(map(str, versions))}", quiet, limits, still_moving, where)


def _version_of(counter: str) -> str:
    """The version="N" label of a counter name as predict_counts spells it."""
    marker = 'version="'
    start = counter.find(marker)
    return counter[start + len(marker) : counter.find('"', start + len(marker))] if start >= 0 else ""


def run(
    store: Store,
    servers: Servers | None,
    steps: list[Step],
    previous: RolloutState | None,
    limits: Limits,
    say=print,
) -> RolloutState | None:
    """Carry out the steps; without servers (nothing running), only the final writes are made."""
    written = previous
    for step in steps:
        if isinstance(step, ApplyConfig):
            store.write_config(step.config)
            if servers is not None:
                wait_applied(servers, step, limits, store.where)
                say(
                    f"  model server: versions {list(step.config.versions)}, "
                    + ", ".join(f"{k}=v{v}" for k, v in step.config.labels)
                )
        elif isinstance(step, WriteState):
            written = store.write_state(step.state, previous)
            say(f"  web UI split: {written.describe()}")
        elif isinstance(step, Drain) and servers is not None:
            wait_drained(servers, step.versions, limits, store.where)
            say(f"  drained: no predict reaches v{', v'.join(map(str, step.versions))} any more")
    return written
