"""TF_CONFIG parsing: who is the chief, how many workers, and which configs are refused."""

from __future__ import annotations

import json

import pytest

from mnist_trainer.tf_config import SINGLE_WORKER, TfConfigError, parse_tf_config


def tf_config(cluster: dict, task_type: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


WORKERS_ONLY = {"worker": ["w0:2222", "w1:2222", "w2:2222"]}
WITH_CHIEF = {"chief": ["c0:2222"], "worker": ["w0:2222", "w1:2222"]}


@pytest.mark.parametrize("raw", [None, "", "   ", "{}", '{"cluster": {}, "task": {}}'])
def test_no_cluster_means_a_single_worker_that_is_chief(raw):
    role = parse_tf_config(raw)
    assert role == SINGLE_WORKER
    assert role.is_chief and not role.is_distributed and role.num_workers == 1


def test_workers_only_worker_zero_is_chief():
    roles = [parse_tf_config(tf_config(WORKERS_ONLY, "worker", index)) for index in range(3)]
    assert [role.is_chief for role in roles] == [True, False, False]
    assert all(role.is_distributed and role.num_workers == 3 for role in roles)
    assert [role.task_index for role in roles] == [0, 1, 2]


def test_with_a_chief_task_the_chief_is_chief_and_worker_zero_is_not():
    chief = parse_tf_config(tf_config(WITH_CHIEF, "chief", 0))
    worker0 = parse_tf_config(tf_config(WITH_CHIEF, "worker", 0))
    worker1 = parse_tf_config(tf_config(WITH_CHIEF, "worker", 1))
    assert (chief.is_chief, worker0.is_chief, worker1.is_chief) == (True, False, False)
    assert chief.num_workers == worker0.num_workers == 3  # the chief trains too
    assert chief.task_type == "chief" and worker1.task_type == "worker"


def test_a_lone_chief_is_not_distributed():
    role = parse_tf_config(tf_config({"chief": ["c0:2222"]}, "chief", 0))
    assert role.is_chief and not role.is_distributed


def test_describe_names_the_role():
    assert parse_tf_config(tf_config(WITH_CHIEF, "worker", 1)).describe() == "worker 1 of 3 workers"
    assert parse_tf_config(tf_config(WITH_CHIEF, "chief", 0)).describe() == "chief 0 (chief) of 3 workers"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (tf_config({"ps": ["p:1"], "worker": ["w:1"]}, "worker", 0), "'ps'"),
        (tf_config(WORKERS_ONLY, "evaluator", 0), "task type"),
        (tf_config(WORKERS_ONLY, "worker", 3), "not in the cluster"),
        (tf_config(WORKERS_ONLY, "chief", 0), "not in the cluster"),
        (tf_config(WORKERS_ONLY, "worker", -1), "non-negative"),
        (json.dumps({"cluster": WORKERS_ONLY, "task": {"type": "worker", "index": "0"}}), "non-negative"),
        (tf_config({"worker": []}, "worker", 0), "non-empty list"),
        (tf_config({"chief": ["a:1", "b:1"]}, "chief", 0), "at most one chief"),
        (json.dumps({"cluster": WORKERS_ONLY}), "task type"),
    ],
)
def test_malformed_or_unsupported_configs_are_refused(raw, message):
    with pytest.raises(TfConfigError, match=message):
        parse_tf_config(raw)
