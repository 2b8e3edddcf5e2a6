"""One training run: resume or start, train with a checkpoint per epoch, then write the outputs."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable

from mnist_common import pipeline, storage
from mnist_common.dataset import DatasetError
from mnist_trainer import artifacts
from mnist_trainer.config import TrainConfig
from mnist_trainer.data import load_training_data, steps_per_epoch, training_dataset
from mnist_trainer.stopping import never_stop
from mnist_trainer.tf_config import ClusterRole


def _print(line: str) -> None:
    print(line, flush=True)


def model_parameters(config: TrainConfig) -> dict:
    """The trainer's settings that decide the model besides its data: the network this code
    builds and how it is trained. `mnist-run plan` compares them with a published version."""
    from mnist_trainer.model import ARCHITECTURE

    return {
        "architecture": ARCHITECTURE,
        "limit": config.limit,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
    }


def run_inputs(config: TrainConfig, dataset_sha256: str, train_examples: int) -> dict:
    """Everything that decides the trained model.

    Recorded with the checkpoints (a resume must continue the same run) and in metrics.json
    (so a caller can skip training when nothing changed).
    """
    return {**model_parameters(config), "dataset_sha256": dataset_sha256, "train_examples": train_examples}


def train(
    config: TrainConfig,
    role: ClusterRole,
    report: Callable[[str], None] = _print,
    check_stop: Callable[[], None] = never_stop,
) -> dict:
    """Train (or finish training) into config.model_dir; returns the metrics written.

    check_stop is called before every training step; it raises to end the run there (the
    checkpoint of the last completed epoch stays). Once the last epoch is done the run finishes.
    """
    started = time.monotonic()
    data = load_training_data(config.data_dir, config.limit)  # before TF: bad data fails fast
    train_count = len(data.train_labels)
    steps = steps_per_epoch(train_count, config.batch_size)
    if steps == 0:
        raise DatasetError(
            f"{config.data_dir}: {train_count} training digits are fewer than one batch "
            f"(--batch-size {config.batch_size})"
        )

    inputs = run_inputs(config, data.dataset_sha256, train_count)
    finished = _finished_run(config.model_dir, inputs)
    if finished is not None:
        report(
            f"{config.model_dir} already holds a model trained with these inputs (validation accuracy "
            f"{finished['validation_accuracy']:.4f}); nothing to do. Delete it or change an input to retrain."
        )
        return finished

    import keras
    import tensorflow as tf

    from mnist_trainer.augment import AugmentParams, augment_batch
    from mnist_trainer.checkpoints import RunCheckpoint
    from mnist_trainer.loop import TrainingLoop
    from mnist_trainer.model import build_model, learning_rate_schedule

    # MultiWorkerMirroredStrategy reads TF_CONFIG itself and must exist before the model does.
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if role.is_distributed else tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)

    checkpoint_dir = storage.join(config.model_dir, artifacts.CHECKPOINTS_DIR)
    if role.is_chief:
        storage.makedirs(config.model_dir)
    with strategy.scope():
        model = build_model(learning_rate_schedule(config.learning_rate, steps, config.epochs))
        checkpoint = RunCheckpoint(checkpoint_dir, model, role.is_chief, inputs)
        completed = checkpoint.restore()
    if completed:
        report(f"resuming from {checkpoint_dir}: {completed} of {config.epochs} epochs already completed")
    else:
        changed = checkpoint.changed_inputs()
        if changed and tf.train.latest_checkpoint(checkpoint_dir):
            report(f"checkpoints in {checkpoint_dir} were made with other {', '.join(changed)}; starting over")
        checkpoint.start_fresh()
    report(
        f"training on {train_count} digits ({role.describe()}): epochs {completed + 1}..{config.epochs}, "
        f"{steps} steps of {config.batch_size} each, peak learning rate {config.learning_rate}, seed {config.seed}"
    )

    loop = TrainingLoop(model, strategy, config.batch_size)
    summaries = _SummaryWriters(storage.join(config.model_dir, artifacts.LOGS_DIR)) if role.is_chief else None
    augment_params = AugmentParams()
    batches = loop.distribute(
        training_dataset(
            data,
            config.batch_size,
            config.seed,
            completed,
            config.epochs,
            augment=lambda images, seed: augment_batch(images, augment_params, seed),
        )
    )
    training_seconds = 0.0
    # Loss and accuracy per epoch, kept beside the checkpoints so a resumed run keeps the
    # epochs it did before (the model page draws them as the training curves).
    history = EpochHistory(checkpoint_dir, role.is_chief, completed)
    for epoch in range(completed + 1, config.epochs + 1):
        epoch_started = time.monotonic()
        train_figures = loop.train_epoch(batches, steps, check_stop)
        validation = loop.evaluate(data.validation_images, data.validation_labels)
        # Before the checkpoint: a run killed in between keeps the epoch's figures, and a resume
        # keeps only the epochs its checkpoint holds.
        history.add(epoch, train_figures, validation, float(model.optimizer.learning_rate))
        checkpoint.save(completed_epochs=epoch)
        seconds = time.monotonic() - epoch_started
        training_seconds += seconds
        if summaries:
            summaries.write(epoch, train_figures, validation, float(model.optimizer.learning_rate))
        report(
            f"epoch {epoch}/{config.epochs}: loss={train_figures.loss:.4f} accuracy={train_figures.accuracy:.4f} "
            f"val_loss={validation.loss:.4f} val_accuracy={validation.accuracy:.4f} ({seconds:.1f} s)"
        )
    validation = loop.evaluate(data.validation_images, data.validation_labels)

    metrics = {
        **inputs,
        "validation_accuracy": validation.accuracy,
        "validation_loss": validation.loss,
        "validation_examples": int(len(data.validation_labels)),
        "resumed_from_epoch": completed,
        "training_seconds": round(training_seconds, 3),
        "num_workers": role.num_workers,
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
        "inputs": inputs,
        # model.keras holds the weights after the last epoch: that is the epoch exported.
        "history": history.epochs,
        "exported_epoch": config.epochs,
    }
    if role.is_chief:
        summaries.close()
        artifacts.save_model(model, config.model_dir)
        metrics["wall_seconds"] = round(time.monotonic() - started, 3)
        artifacts.write_metrics(metrics, config.model_dir)  # last: it marks the run finished
        report(
            f"done: validation accuracy {validation.accuracy:.4f}, loss {validation.loss:.4f}; "
            f"{training_seconds:.1f} s training, {metrics['wall_seconds']:.1f} s in all; "
            f"wrote {storage.join(config.model_dir, artifacts.MODEL_FILE)} and {artifacts.METRICS_FILE}"
        )
    else:
        # Every worker takes part in a save; a non-chief's copy goes to a temporary folder.
        artifacts.save_model_discarded(model)
        metrics["wall_seconds"] = round(time.monotonic() - started, 3)
        report(f"done ({role.describe()}): the chief writes the model and metrics")
    checkpoint.close()
    return metrics


def _finished_run(model_dir: str, inputs: dict) -> dict | None:
    """The metrics of a finished run with exactly these inputs in model_dir, if there is one."""
    try:
        metrics = artifacts.read_metrics(model_dir)
    except (FileNotFoundError, ValueError):
        return None
    if not pipeline.same_training_inputs(
        pipeline.inputs_of({"inputs": inputs}), metrics.get("dataset_sha256"), metrics
    ):
        return None
    if not storage.exists(storage.join(model_dir, artifacts.MODEL_FILE)):
        return None
    return metrics


class EpochHistory:
    """Training and validation loss and accuracy per epoch, in <checkpoints>/history.json.

    Written by the chief with each epoch's checkpoint (a fresh start removes the checkpoints
    folder and with it the history); a resumed run keeps the epochs up to its checkpoint.
    """

    FILE = "history.json"

    def __init__(self, checkpoint_dir: str, is_chief: bool, completed_epochs: int):
        self.path = storage.join(checkpoint_dir, self.FILE)
        self.is_chief = is_chief
        recorded = pipeline.read_json_object(self.path) or {}
        earlier = recorded.get("epochs") if isinstance(recorded.get("epochs"), list) else []
        self.epochs: list[dict] = [
            entry for entry in earlier if isinstance(entry, dict) and 0 < entry.get("epoch", 0) <= completed_epochs
        ]

    def add(self, epoch: int, train, validation, learning_rate: float) -> None:
        self.epochs.append(
            {
                "epoch": epoch,
                "loss": round(train.loss, 6),
                "accuracy": round(train.accuracy, 6),
                "val_loss": round(validation.loss, 6),
                "val_accuracy": round(validation.accuracy, 6),
                "learning_rate": learning_rate,
            }
        )
        if self.is_chief:
            storage.write_bytes_atomic(self.path, json.dumps({"epochs": self.epochs}, indent=2).encode())


class _SummaryWriters:
    """TensorBoard scalars per epoch, in logs/train and logs/validation (the chief only)."""

    def __init__(self, logs_dir: str):
        import tensorflow as tf

        self._tf = tf
        self._train = tf.summary.create_file_writer(storage.join(logs_dir, "train"))
        self._validation = tf.summary.create_file_writer(storage.join(logs_dir, "validation"))

    def write(self, epoch: int, train, validation, learning_rate: float) -> None:
        tf = self._tf
        with self._train.as_default(step=epoch):
            tf.summary.scalar("epoch_loss", train.loss)
            tf.summary.scalar("epoch_accuracy", train.accuracy)
            tf.summary.scalar("epoch_learning_rate", learning_rate)
        with self._validation.as_default(step=epoch):
            tf.summary.scalar("epoch_loss", validation.loss)
            tf.summary.scalar("epoch_accuracy", validation.accuracy)
        self._train.flush()
        self._validation.flush()

    def close(self) -> None:
        self._train.close()
        self._validation.close()
