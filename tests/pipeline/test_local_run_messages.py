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
