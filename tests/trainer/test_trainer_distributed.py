"""A real two-process MultiWorkerMirroredStrategy run on loopback ports, as a TFJob would start it."""

from __future__ import annotations

import json
import subprocess

import pytest

from mnist_run.ports import free_ports
from tests.trainer.trainer_helpers import epoch_lines, trainer_command, trainer_env

pytestmark = pytest.mark.slow


def test_chief_and_worker_train_together_and_only_the_chief_writes(data_dir, tmp_path):
    chief_port, worker_port = free_ports(2)
    cluster = {"chief": [f"127.0.0.1:{chief_port}"], "worker": [f"127.0.0.1:{worker_port}"]}
    model_dir = tmp_path / "model"
    command = trainer_command(
        "--data-dir", data_dir, "--model-dir", str(model_dir), "--limit", "256", "--batch-size", "64", "--epochs", "2"
    )
    processes, scratch_dirs = {}, {}
    for task_type in ("chief", "worker"):
        scratch_dirs[task_type] = tmp_path / f"tmp-{task_type}"
        scratch_dirs[task_type].mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": task_type, "index": 0}})
        env = trainer_env(TF_CONFIG=tf_config, TMPDIR=str(scratch_dirs[task_type]))
        processes[task_type] = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    outputs = {}
    try:
        for task_type, process in processes.items():
            outputs[task_type] = process.communicate(timeout=240)[0]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    for task_type, process in processes.items():
        assert process.returncode == 0, f"{task_type}:\n{outputs[task_type]}"

    assert "chief 0 (chief) of 2 workers" in outputs["chief"]
    assert "worker 0 of 2 workers" in outputs["worker"]
    assert "the chief writes the model and metrics" in outputs["worker"]
    # Gradients are all-reduced: both replicas see the same global training loss each epoch.
    losses = {task: [line.split()[2] for line in epoch_lines(out)] for task, out in outputs.items()}
    assert len(losses["chief"]) == 2 and losses["chief"] == losses["worker"]

    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["num_workers"] == 2 and metrics["epochs"] == 2
    assert (model_dir / "model.keras").exists()
    assert sorted(path.name for path in (model_dir / "checkpoints").iterdir()) == [
        "checkpoint",
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "history.json",  # the per-epoch figures kept across a resume (the model page's curves)
        "run.json",
    ]
    # The worker's own checkpoint and model copies went to its temporary dir and were deleted.
    assert list(scratch_dirs["worker"].iterdir()) == []
