"""Helpers of the trainer tests: run `mnist-train` as a real process, read what it wrote.

(A uniquely named module rather than conftest.py: every test area has a conftest, and
`from conftest import ...` would pick whichever was imported first.)
"""

from __future__ import annotations

import os
import subprocess
import sys

# Variables the trainer reads; tests set what they need explicitly.
TRAINER_VARIABLES = (
    "TF_CONFIG",
    "DATA_DIR",
    "MODEL_DIR",
    "TRAIN_DIR",
    "EPOCHS",
    "BATCH_SIZE",
    "LEARNING_RATE",
    "SEED",
    "TRAIN_LIMIT",
)


def trainer_env(**extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in TRAINER_VARIABLES}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def trainer_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mnist_trainer.cli", *args]


def run_trainer(*args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        trainer_command(*args), env=trainer_env(**env), capture_output=True, text=True, timeout=timeout
    )


def epoch_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("epoch ")]


def latest_checkpoint_number(model_dir) -> int:
    """The epoch counter as the checkpoint index file names it (ckpt-N after epoch N)."""
    state = (model_dir / "checkpoints" / "checkpoint").read_text()
    first_line = state.splitlines()[0]  # model_checkpoint_path: "ckpt-N"
    return int(first_line.split('"')[1].rsplit("-", 1)[1])
