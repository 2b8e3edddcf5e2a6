"""The rollout runner (mnist_common.rollout.runner) waits for EVERY replica before the next phase,
and a step that does not happen names what was seen instead: the lagging replica's states, or
the predict counter that still moves."""

from __future__ import annotations

import pytest

from mnist_common.rollout import runner, steps
from mnist_common.rollout.state import RolloutState

FAST = runner.Limits(timeout_seconds=1.0, quiet_seconds=0.05, poll_seconds=0.01)


class Recorder:
    """A store and servers in one, recording what happened in which order."""

    where = "models.config"

    def __init__(self, lagging_polls: int = 0, stuck: bool = False, moving: bool = False):
        self.events: list[str] = []
        self.config = None
        self.lagging_polls, self.stuck, self.moving = lagging_polls, stuck, moving
        self.count = 0.0

    def write_config(self, config):
        self.config = config
        self.events.append(f"config {list(config.versions)} {dict(config.labels)}")

    def write_state(self, state, previous):
        self.events.append(f"state {state.describe()}")
        return state

    def version_states(self):
        loaded = {v: "AVAILABLE" for v in self.config.versions}
        lagging = dict(loaded)
        if self.stuck or self.lagging_polls > 0:
            self.lagging_polls -= 1
            lagging = {v: ("LOADING" if v == max(self.config.versions) else s) for v, s in loaded.items()}
        self.events.append("states")
        return {"tf-serving-a": loaded, "tf-serving-b": lagging}

    def label_versions(self, labels):
        return {pod: {k: self.config.label_map[k] for k in labels} for pod in ("tf-serving-a", "tf-serving-b")}

    def predict_counts(self):
        if self.moving:
            self.count += 1
        return {'webui_predictions_total{pod="web-ui-a",version="1"}': self.count}


def test_the_labels_move_only_once_every_replica_has_the_new_version():
    recorder = Recorder(lagging_polls=3)
    old, new = RolloutState(stable=1), RolloutState(stable=1, canary=2, canary_percent=10)
    runner.run(recorder, recorder, steps.plan(old, new), old, FAST, say=lambda line: None)
    first_label_move = recorder.events.index("config [1, 2] {'stable': 1, 'canary': 2}")
    assert recorder.events[:1] == ["config [1, 2] {'stable': 1, 'canary': 1}"]
    assert recorder.events[1:first_label_move].count("states") == 4  # three lagging polls, then both ready
    assert recorder.events[-1] == "state stable v1 at 90 %, canary v2 at 10 %"


def test_a_replica_that_never_loads_stops_the_rollout_naming_it():
    recorder = Recorder(stuck=True)
    old, new = RolloutState(stable=1), RolloutState(stable=1, canary=2, canary_percent=10)
    with pytest.raises(runner.RolloutTimeout) as raised:
        runner.run(recorder, recorder, steps.plan(old, new), old, FAST, say=lambda line: None)
    message = str(raised.value)
    assert "tf-serving-b: v1 AVAILABLE, v2 LOADING" in message and runner.REFUSAL_LOG in message
    assert not any(event.startswith("state ") for event in recorder.events)  # the split never moved


def test_a_drain_that_never_ends_names_the_counter_that_still_moves():
    recorder = Recorder(moving=True)
    old, new = RolloutState(stable=1, canary=2, canary_percent=10), RolloutState(stable=2, previous_stable=1)
    with pytest.raises(runner.RolloutTimeout) as raised:
        runner.run(recorder, recorder, steps.plan(old, new), old, FAST, say=lambda line: None)
    assert 'still moving: webui_predictions_total{pod="web-ui-a",version="1"}' in str(raised.value)
    assert "the last predicts to v1" in str(raised.value)
    assert recorder.config.versions == (1, 2)  # v1 was never dropped from the config
