"""The rollout's pure parts: transitions, the promote guard, the order of steps against a running
model server, the rendered model config, quantiles from histogram buckets, the policy file."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from mnist_rollout import live_metrics
from tensorflow_serving.config import model_server_config_pb2

from mnist_common.rollout import guard, model_config, steps
from mnist_common.rollout import state as rollout_state
from mnist_common.rollout import transitions as decisions
from mnist_common.rollout.guard import PromotePolicy, VersionFigures
from mnist_common.rollout.state import RolloutState
from mnist_common.rollout.transitions import RolloutRefused


def test_the_first_published_version_is_stable_a_later_one_the_canary():
    first = decisions.publish(None, 1, 10)
    assert (first.stable, first.canary) == (1, None)
    second = decisions.publish(first, 2, 10)
    assert (second.stable, second.canary, second.canary_percent) == (1, 2, 10)
    assert decisions.publish(second, 2, 10) == second  # already serving: unchanged


def test_canary_checks_the_version_and_the_share():
    stable = RolloutState(stable=1)
    assert decisions.canary(stable, 3, 20, [1, 2, 3]).canary == 3
    with pytest.raises(RolloutRefused, match="not published"):
        decisions.canary(stable, 4, 20, [1, 2, 3])
    with pytest.raises(RolloutRefused, match="already the stable"):
        decisions.canary(stable, 1, 20, [1, 2])
    with pytest.raises(RolloutRefused, match="PERCENT"):
        decisions.canary(stable, 2, 120, [1, 2])


def test_promote_and_rollback():
    with_canary = RolloutState(stable=1, canary=2, canary_percent=10)
    promoted = decisions.promote(with_canary)
    assert (promoted.stable, promoted.canary, promoted.previous_stable) == (2, None, 1)
    back = decisions.rollback(promoted, [1, 2])
    assert (back.stable, back.canary) == (1, None)
    dropped = decisions.rollback(with_canary, [1, 2])
    assert (dropped.stable, dropped.canary, dropped.canary_percent) == (1, None, 0)
    with pytest.raises(RolloutRefused, match="no canary"):
        decisions.promote(promoted)
    with pytest.raises(RolloutRefused, match="nothing to roll back"):
        decisions.rollback(RolloutState(stable=1), [1])
    with pytest.raises(RolloutRefused, match="no longer published"):
        decisions.rollback(promoted, [2])


def figures(requests, errors, p95_ms):
    return VersionFigures(requests, errors, p95_ms / 2000, p95_ms / 1000, 0.99)


def test_the_promote_guard_names_the_figure_that_is_worse():
    margins = PromotePolicy(max_error_rate_increase=0.01, max_p95_increase_ms=50, min_canary_requests=20)
    assert guard.promote_objections(figures(1000, 5, 40), figures(200, 1, 60), margins) == []
    error_rate = guard.promote_objections(figures(1000, 5, 40), figures(200, 20, 40), margins)
    assert len(error_rate) == 1 and error_rate[0].startswith("error rate")
    latency = guard.promote_objections(figures(1000, 0, 40), figures(200, 0, 120), margins)
    assert len(latency) == 1 and latency[0].startswith("p95 latency")
    too_few = guard.promote_objections(figures(1000, 0, 40), figures(5, 0, 40), margins)
    assert too_few[0].startswith("canary requests")


def test_a_new_version_loads_before_a_label_names_it_and_a_retired_one_goes_last():
    old = RolloutState(stable=1)
    new = RolloutState(stable=1, canary=2, canary_percent=10)
    plan = steps.plan(old, new)
    assert [type(s).__name__ for s in plan] == ["ApplyConfig", "ApplyConfig", "WriteState"]
    assert plan[0].config.versions == (1, 2) and plan[0].config.label_map == {"stable": 1, "canary": 1}
    assert plan[1].config.label_map == {"stable": 1, "canary": 2}
    promote = steps.plan(new, decisions.promote(new))
    assert [type(s).__name__ for s in promote] == ["ApplyConfig", "WriteState", "Drain", "ApplyConfig"]
    assert promote[0].config.versions == (1, 2) and promote[0].config.label_map == {"stable": 2, "canary": 2}
    assert promote[2].versions == (1,) and promote[3].config.versions == (2,)
    # Only the share changes: no server step at all.
    assert [type(s).__name__ for s in steps.plan(new, RolloutState(stable=1, canary=2, canary_percent=50))] == [
        "WriteState"
    ]


def test_the_rendered_config_is_a_model_server_config_with_both_versions_and_labels():
    config = model_config.server_config(RolloutState(stable=3, canary=4, canary_percent=10))
    text = model_config.render(config, "mnist", "/models/mnist")
    proto = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    entry = proto.model_config_list.config[0]
    assert list(entry.model_version_policy.specific.versions) == [3, 4]
    assert dict(entry.version_labels) == {"stable": 3, "canary": 4}
    latest = text_format.Parse(model_config.render_latest("mnist", "/m"), model_server_config_pb2.ModelServerConfig())
    assert latest.model_config_list.config[0].model_version_policy.latest.num_versions == 1


def test_quantiles_interpolate_within_a_bucket():
    buckets = [(0.01, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert live_metrics.quantile(0.5, buckets) == pytest.approx(0.01)
    assert live_metrics.quantile(0.75, buckets) == pytest.approx(0.055)
    assert live_metrics.quantile(0.5, []) is None


def test_the_state_is_written_atomically_with_a_new_generation(tmp_path):
    path = str(tmp_path / "rollout.json")
    first = rollout_state.write(path, RolloutState(stable=1), None)
    second = rollout_state.write(path, RolloutState(stable=1, canary=2, canary_percent=5), first)
    assert (first.generation, second.generation) == (1, 2)
    assert rollout_state.read(path) == second
    assert [p.name for p in tmp_path.iterdir()] == ["rollout.json"]  # no temporary file left


def test_the_policy_file_is_checked(tmp_path):
    path = tmp_path / "rollout.yaml"
    path.write_text("promote:\n  max_p95_increase_ms: 20\n")
    assert guard.load_policy(str(path)).max_p95_increase_ms == 20
    path.write_text("promote:\n  max_p95: 20\n")
    with pytest.raises(guard.PolicyError, match="unknown promote field"):
        guard.load_policy(str(path))
    path.write_text("promote:\n  min_canary_requests: -1\n")
    with pytest.raises(guard.PolicyError, match="min_canary_requests"):
        guard.load_policy(str(path))


def test_the_repository_policy_file_loads(repo_root):
    assert guard.load_policy(str(repo_root / "loadtest" / "rollout.yaml")) == PromotePolicy()


def test_the_verdict_carries_every_figure_it_compared_whichever_way_it_goes():
    margins = PromotePolicy(max_error_rate_increase=0.01, max_p95_increase_ms=50, min_canary_requests=20)
    passed = guard.judge(figures(1000, 5, 40), figures(200, 1, 60), margins, stable_version=1, canary_version=2)
    assert passed.allowed and passed.objections == []
    assert [c.figure for c in passed.comparisons] == ["canary requests", "error rate", "p95 latency"]
    error_rate = passed.comparisons[1]
    assert (error_rate.canary, error_rate.stable) == (pytest.approx(0.005), pytest.approx(0.005))
    assert error_rate.limit == pytest.approx(0.015)
    latency = passed.comparisons[2]
    assert (latency.canary, latency.stable, latency.limit) == (pytest.approx(60), pytest.approx(40), pytest.approx(90))
    assert any("60.0 ms vs stable 40.0 ms" in line for line in passed.lines())
    refused = guard.judge(figures(1000, 5, 40), figures(200, 20, 40), margins)
    assert not refused.allowed and [c.figure for c in refused.comparisons if not c.passed] == ["error rate"]
    assert "10.00% (20 of 200)" in refused.objections[0]
    # Too few canary answers: nothing else is compared, and the count says how many there were.
    early = guard.judge(None, figures(5, 0, 40), margins)
    assert [c.figure for c in early.comparisons] == ["canary requests"] and early.comparisons[0].canary == 5
