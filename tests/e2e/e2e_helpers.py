"""Running the pipeline's real commands (mnist-train, mnist-export, mnist-run) from the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

# The tiny training: small enough for seconds, with enough steps for batch normalisation to
# settle. As make variables (`make run EPOCHS=1 ...`) and as the mnist-train flags they become.
TRAINER_VARIABLES = {"EPOCHS": "1", "BATCH_SIZE": "32", "TRAIN_LIMIT": "512", "SEED": "3", "LEARNING_RATE": "0.003"}
_FLAGS = {
    "EPOCHS": "--epochs",
    "BATCH_SIZE": "--batch-size",
    "TRAIN_LIMIT": "--limit",
    "SEED": "--seed",
    "LEARNING_RATE": "--learning-rate",
}
TRAINER_FLAGS = [part for name, value in TRAINER_VARIABLES.items() for part in (_FLAGS[name], value)]


@dataclass(frozen=True)
class Pipeline:
    data_dir: str
    train_dir: str
    model_base_path: str


def venv_command(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def train(pipeline: Pipeline) -> subprocess.CompletedProcess:
    return run(
        [
            venv_command("mnist-train"),
            "--data-dir",
            pipeline.data_dir,
            "--model-dir",
            pipeline.train_dir,
            *TRAINER_FLAGS,
        ],
        timeout=300,
    )


def export(pipeline: Pipeline, *extra: str) -> subprocess.CompletedProcess:
    # A tiny model is far below the real gate (MIN_ACCURACY 0.97): what is tested here is the
    # path from training to serving, not the gate.
    return run(
        [
            venv_command("mnist-export"),
            "--train-dir",
            pipeline.train_dir,
            "--data-dir",
            pipeline.data_dir,
            "--model-base-path",
            pipeline.model_base_path,
            "--min-accuracy",
            "0",
            "--max-regression",
            "1",
            *extra,
        ],
        timeout=240,
    )


def wait_for_line(log_path, text: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log_path.read_text(errors="replace")
        if text in output:
            return output
        assert process.poll() is None, f"make run exited ({process.returncode}):\n{output[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} within {timeout:g} s:\n{log_path.read_text(errors='replace')[-3000:]}")
