"""Per-epoch checkpoints, so a preempted run resumes from its last completed epoch.

A checkpoint holds the model weights, the optimizer state (its step counter drives the
learning-rate schedule, so the schedule resumes where it stopped) and the number of completed
epochs, all in one tf.train.Checkpoint: they can never disagree with each other.
tf.train.CheckpointManager writes the data files first and then atomically replaces the small
`checkpoint` index file that names the latest one, locally and on gs://; a run killed mid-save
leaves the previous checkpoint as the latest.

The checkpoints belong to one set of training inputs (data set and parameters, in run.json). A
rerun with different inputs must not continue someone else's run: it starts over.

Under MultiWorkerMirroredStrategy every worker must take part in each save, but only the chief
writes into the model dir; the others save into a private temporary folder and delete it.
"""

from __future__ import annotations

import json
import shutil
import tempfile

import tensorflow as tf

from mnist_common import storage

RUN_FILE = "run.json"
KEEP_CHECKPOINTS = 2


class RunCheckpoint:
    def __init__(self, checkpoint_dir: str, model, is_chief: bool, run_inputs: dict):
        self.checkpoint_dir = checkpoint_dir
        self.is_chief = is_chief
        self._model = model
        self.run_inputs = run_inputs
        self.completed_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
        self._checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, completed_epochs=self.completed_epochs
        )
        self._write_dir = checkpoint_dir if is_chief else tempfile.mkdtemp(prefix="mnist-train-worker-")
        self._manager = tf.train.CheckpointManager(self._checkpoint, self._write_dir, max_to_keep=KEEP_CHECKPOINTS)

    def _recorded_inputs(self) -> dict | None:
        try:
            return json.loads(storage.read_bytes(storage.join(self.checkpoint_dir, RUN_FILE)))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def changed_inputs(self) -> list[str]:
        """Names of the inputs that differ from those the existing checkpoints were made with."""
        recorded = self._recorded_inputs() or {}
        keys = sorted(set(recorded) | set(self.run_inputs))
        return [key for key in keys if recorded.get(key) != self.run_inputs.get(key)]

    def restore(self) -> int:
        """Load the latest checkpoint of this run, if any; returns the completed epochs.

        Every worker reads the chief's checkpoints (a shared gs:// dir on a cluster).
        """
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest is None or self.changed_inputs():
            return 0
        # Optimizer slots are created lazily; build them so the restore fills them in now
        # instead of deferring, which would let the first resumed step use fresh moments.
        if not self._model.optimizer.built:
            self._model.optimizer.build(self._model.trainable_variables)
        self._checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.completed_epochs.numpy())

    def start_fresh(self) -> None:
        """Forget checkpoints made with other inputs, and record this run's inputs."""
        if not self.is_chief:
            return
        if storage.exists(self.checkpoint_dir):
            tf.io.gfile.rmtree(self.checkpoint_dir)
        storage.makedirs(self.checkpoint_dir)
        storage.write_bytes_atomic(
            storage.join(self.checkpoint_dir, RUN_FILE),
            json.dumps(self.run_inputs, indent=2, sort_keys=True).encode(),
        )

    def save(self, completed_epochs: int) -> None:
        self.completed_epochs.assign(completed_epochs)
        self._manager.save(checkpoint_number=completed_epochs)
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)

    def close(self) -> None:
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
