"""What `make pipeline-local` says when a step fails: the step's own reason, without TensorFlow's
C++ log lines, and parameters typed as the IR declares them before anything runs."""

from __future__ import annotations

import pytest
from mnist_kfp.local_run import ContainerRun, LocalRunError, reason_of, typed_arguments

TF_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796688184.617551       1 port.cc:153] oneDNN custom operations are on ... round-off errors",
    "E0000 00:00:1796688190.283963       1 cuda_platform.cc:52] failed call to cuInit: CUDA error",
]


def test_a_gate_refusal_reads_as_the_failed_checks():
    run = ContainerRun(
        "exporter",
        exit_code=3,
        lines=[
            *TF_NOISE,
            "mnist-export: REFUSED, nothing published in /mnt/models/mnist:",
            "  failed check min-accuracy: validation accuracy 0.9560 on 999 digits is below --min-accuracy 0.9990",
        ],
    )
    assert reason_of(run) == (
        "exit 3, refused by the validation gate: mnist-export: REFUSED, nothing published in /mnt/models/mnist: | "
        "failed check min-accuracy: validation accuracy 0.9560 on 999 digits is below --min-accuracy 0.9990"
    )


def test_a_bad_flag_reads_as_the_commands_error_and_a_crash_as_its_exception():
    usage = ContainerRun(
        "trainer", 2, ["usage: mnist-train [-h]", "mnist-train: error: argument --epochs: '0' must be at least 1"]
    )
    assert reason_of(usage) == "exit 2, bad input: mnist-train: error: argument --epochs: '0' must be at least 1"
    crash = ContainerRun("x", 1, [*TF_NOISE, "Traceback (most recent call last):", "OSError: disk full"])
    assert reason_of(crash) == "exit 1: OSError: disk full"
    quiet = ContainerRun("x", 1, [*TF_NOISE, "one", "two", "three", "four"])
    assert reason_of(quiet) == "exit 1: two | three | four"


def test_parameters_are_typed_as_the_ir_declares_them():
    types = {"epochs": "NUMBER_INTEGER", "learning_rate": "NUMBER_DOUBLE", "model_name": "STRING"}
    given = {"epochs": "2", "learning_rate": "0.01", "model_name": "mnist"}
    assert typed_arguments(given, types) == {"epochs": 2, "learning_rate": 0.01, "model_name": "mnist"}
    with pytest.raises(LocalRunError, match="parameter epochs='two' is not a number_integer"):
        typed_arguments({"epochs": "two"}, types)
    with pytest.raises(LocalRunError, match="'epoch' is not one of the pipeline's"):
        typed_arguments({"epoch": "2"}, types)


class _Store:
    """kfp.local's IOStore as far as DAG outputs use it: get_task_output raises ValueError for a
    task that did not run (kfp/local/io.py, IOStore.get_task_output)."""

    def __init__(self, ran: dict):
        self.ran = ran

    def get_task_output(self, task, key):
        if task not in self.ran:
            raise ValueError(f"Tried to get output '{key}' from task '{task}'")
        return self.ran[task][key]


def _oneof(*branches):
    from types import SimpleNamespace

    selectors = [SimpleNamespace(producer_subtask=task, output_artifact_key="model") for task in branches]
    return SimpleNamespace(artifacts={"oneof-1": SimpleNamespace(artifact_selectors=selectors)})


def test_a_oneof_over_artifacts_is_the_branch_that_ran():
    from mnist_kfp.local_run import oneof_dag_output_artifacts

    spec = _oneof("condition-2", "condition-3")
    ran = _Store({"condition-2": {"model": "the single container's model"}})
    assert oneof_dag_output_artifacts(None, spec, ran) == {"oneof-1": "the single container's model"}
    ran = _Store({"condition-3": {"model": "the TFJob's model"}})
    assert oneof_dag_output_artifacts(None, spec, ran) == {"oneof-1": "the TFJob's model"}
    with pytest.raises(ValueError, match="0 branches produced it"):
        oneof_dag_output_artifacts(None, spec, _Store({}))
    both = _Store({"condition-2": {"model": "a"}, "condition-3": {"model": "b"}})
    with pytest.raises(ValueError, match="2 branches produced it"):
        oneof_dag_output_artifacts(None, spec, both)
