"""The trainer SIGKILLed in the middle of an epoch: the same command resumes from the last
completed epoch, and the final model is as good as an uninterrupted run of the same settings.

SIGKILL, not SIGTERM: nothing in the trainer gets to run (a node lost, the OOM killer), so only
what was already on disk (the per-epoch checkpoint) can carry the run on.
"""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from tests.resilience.figures import record
from tests.resilience.resilience_support import pipeline_env, trainer_command
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

# Validation accuracy on 1,000 digits: one digit is 0.001; runs differ only by dropout's random
# draws after the resume and TensorFlow's thread scheduling, which move a tiny model's accuracy by
# about a percent (measured: up to 0.012 apart).
ACCURACY_TOLERANCE = 0.03


class LineReader:
    """Collects a process's output lines in a thread, so the test can wait for one."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def test_trainer_killed_mid_epoch_resumes_with_the_same_command_and_is_as_good(
    training_run, data_dir, tmp_path, logs_dir
):
    model_dir = tmp_path / "model"
    command = trainer_command(data_dir, model_dir)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=pipeline_env())
    output = LineReader(process)
    try:
        # The line comes once epoch 1 is checkpointed, as epoch 2 begins. Kill at once: an epoch
        # of this run takes about 0.3 s on a quiet machine, so a pause here (there was one of
        # 0.3 s) could let epoch 2 finish before the kill.
        wait_for(
            lambda: any(line.startswith("epoch 1/2") for line in output.lines) or process.poll() is not None,
            300,
            "the first epoch to finish",
            interval=0.005,
        )
        process.kill()
    finally:
        if process.poll() is None:
            process.kill()
        returncode = process.wait(timeout=30)
    killed_output = output.text()
    (logs_dir / "train-killed.log").write_text(killed_output)
    assert returncode == -9, killed_output[-2000:]
    # Killed in epoch 2: epoch 1 is checkpointed, nothing of a finished run was written.
    assert "epoch 2/2" not in killed_output
    assert (model_dir / "checkpoints" / "ckpt-1.index").exists()
    assert not (model_dir / "metrics.json").exists() and not (model_dir / "model.keras").exists()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=pipeline_env())
    (logs_dir / "train-resumed.log").write_text(resumed.stdout + resumed.stderr)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 of 2 epochs already completed" in resumed.stdout
    assert [line for line in resumed.stdout.splitlines() if line.startswith("epoch ")][0].startswith("epoch 2/2")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    record(
        "faults",
        "trainer killed mid-epoch, resumed by the same command",
        reference_validation_accuracy=round(training_run.validation_accuracy, 4),
        resumed_validation_accuracy=round(metrics["validation_accuracy"], 4),
        resumed_from_epoch=metrics["resumed_from_epoch"],
        tolerance=ACCURACY_TOLERANCE,
    )
    assert metrics["resumed_from_epoch"] == 1 and metrics["epochs"] == 2
    assert metrics["validation_accuracy"] >= training_run.validation_accuracy - ACCURACY_TOLERANCE, (
        metrics["validation_accuracy"],
        training_run.validation_accuracy,
    )
