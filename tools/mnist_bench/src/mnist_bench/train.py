"""`make bench-train`: train with the defaults, then measure accuracy on the held-out test digits.

Prints the test accuracy, the training seconds (the per-epoch loop: data pipeline, steps,
validation and checkpoints; not the TensorFlow import or the final save) and the machine's load,
and exits 1 when the accuracy is below --min-accuracy or the training took longer than
--max-seconds. The test split is never used by training or model selection.

The 999 test digits cannot resolve less than about +-0.5 points, so the benchmark then
cross-validates the same training (--folds, default 5): all the data set's digits (train,
validation and test) in stratified folds, each fold held out once while the trainer, with its
defaults, learns from the rest. Every digit is predicted once by a model that never saw it, so
the pooled accuracy rests on all of them (10,000 for the default data: +-0.2 points at 99 %).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import sys
from dataclasses import dataclass

import numpy as np

from mnist_common import dataset, pipeline, storage
from mnist_common.prepare_data import stratified_split, write_splits

# Digits of a fold's training side that the trainer reports as "validation" each epoch (it only
# reports them; nothing is selected by them). The held-out fold never reaches the trainer.
FOLD_VALIDATION_DIGITS = 500


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-bench train", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="trained model dir (a fresh one trains from scratch)")
    parser.add_argument("--data-dir", default="artifacts/data/mnist")
    parser.add_argument("--min-accuracy", type=float, default=0.99)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds after the default run (0: none; else at least 2)"
    )
    parser.add_argument("--cv-seed", type=int, default=0, help="seed of the stratified fold assignment")
    return parser


def fold_indices(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Stratified, disjoint folds covering every digit once (the first takes what rounding leaves)."""
    names = [f"fold{k}" for k in range(folds)]
    parts = stratified_split(labels, dict.fromkeys(names, 1 / folds), seed)
    return [parts[name] for name in names]


def fold_data(images: np.ndarray, labels: np.ndarray, held_out: np.ndarray) -> dict:
    """The splits of one fold's data dir: train on the rest, test on the held-out fold."""
    rest = np.setdiff1d(np.arange(len(labels)), held_out, assume_unique=True)
    rest = rest[np.random.default_rng(len(held_out)).permutation(len(rest))]
    reported = rest[:FOLD_VALIDATION_DIGITS]
    return {
        "train": (images[rest], labels[rest]),
        "validation": (images[reported], labels[reported]),
        "test": (images[held_out], labels[held_out]),
    }


@dataclass(frozen=True)
class FoldResult:
    correct: int
    count: int
    training_seconds: float
    cpu_seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.count


def pooled_interval(correct: int, count: int) -> tuple[float, float]:
    """The pooled accuracy and the half-width of its 95 % interval (normal approximation)."""
    p = correct / count
    return p, 1.96 * math.sqrt(p * (1 - p) / count)


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def test_accuracy(model_dir: str, data_dir: str) -> tuple[int, int]:
    import keras

    model = keras.models.load_model(storage.join(model_dir, pipeline.TRAINED_MODEL_FILE))
    test = dataset.load_split(data_dir, "test")
    probabilities = model.predict(test.as_float(), batch_size=500, verbose=0)
    return int((probabilities.argmax(axis=1) == test.labels).sum()), len(test)


def cross_validate(data_dir: str, work_dir: str, folds: int, seed: int) -> list[FoldResult]:
    from mnist_trainer.cli import main as train_main

    splits = [dataset.load_split(data_dir, name) for name in dataset.SPLITS]
    images = np.concatenate([split.images for split in splits])
    labels = np.concatenate([split.labels for split in splits])
    results = []
    for k, held_out in enumerate(fold_indices(labels, folds, seed)):
        fold_dir = os.path.join(work_dir, f"fold-{k}")
        shutil.rmtree(fold_dir, ignore_errors=True)  # every fold trains from scratch
        data, model = os.path.join(fold_dir, "data"), os.path.join(fold_dir, "model")
        write_splits(data, fold_data(images, labels, held_out), source="cv", origin=f"{data_dir} fold {k}", seed=seed)
        cpu_before = _cpu_seconds()
        print(f"$ mnist-train --data-dir {data} --model-dir {model}   # fold {k + 1} of {folds}", flush=True)
        if train_main(["--data-dir", data, "--model-dir", model]) != 0:
            raise RuntimeError(f"training fold {k} failed")
        cpu = _cpu_seconds() - cpu_before
        correct, count = test_accuracy(model, data)
        seconds = pipeline.read_training_metrics(model)["training_seconds"]
        results.append(FoldResult(correct, count, seconds, cpu))
        print(f"fold {k + 1}/{folds}: {correct}/{count} = {correct / count:.4f}, {seconds:.1f} s training", flush=True)
    return results


def cv_report(results: list[FoldResult]) -> str:
    accuracies = np.array([r.accuracy for r in results])
    correct, count = sum(r.correct for r in results), sum(r.count for r in results)
    pooled, half_width = pooled_interval(correct, count)
    seconds = [r.training_seconds for r in results]
    cpu = [r.cpu_seconds for r in results]
    return "\n".join(
        [
            f"cross-validation  {len(results)} folds over all {count} digits, each held out once",
            "  per fold        " + ", ".join(f"{a:.4f}" for a in accuracies),
            f"  pooled          {pooled:.4f} ({correct}/{count}), 95 % interval +-{half_width:.4f}",
            f"  across folds    mean {accuracies.mean():.4f}, std {accuracies.std(ddof=1) if len(results) > 1 else 0:.4f}, "
            f"min {accuracies.min():.4f}, max {accuracies.max():.4f}",
            f"  training s      median {np.median(seconds):.1f} (min {min(seconds):.1f}, max {max(seconds):.1f}); "
            f"CPU s per fold median {np.median(cpu):.1f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.folds < 0 or args.folds == 1:
        # One fold would hold every digit out and train on none; checked before the default run,
        # not a minute into it.
        parser.error(f"--folds {args.folds}: give 0 (no cross-validation) or at least 2 (BENCH_FOLDS in make)")
    load_before = os.getloadavg()
    cpu_before = _cpu_seconds()

    from mnist_trainer.cli import main as train_main

    train_argv = ["--data-dir", args.data_dir, "--model-dir", args.model_dir]
    print(f"$ mnist-train {shlex.join(train_argv)}", flush=True)
    status = train_main(train_argv)
    if status != 0:
        return status
    cpu_seconds = _cpu_seconds() - cpu_before
    metrics = pipeline.read_training_metrics(args.model_dir)
    if metrics["resumed_from_epoch"] != 0:
        print(
            f"mnist-train-bench: error: {args.model_dir} held an earlier run; benchmark a fresh model dir",
            file=sys.stderr,
        )
        return 2

    correct, count = test_accuracy(args.model_dir, args.data_dir)
    accuracy = correct / count
    seconds = metrics["training_seconds"]

    print(f"test accuracy     {accuracy:.5f} ({correct}/{count} held-out digits; need >= {args.min_accuracy})")
    print(
        f"training seconds  {seconds:.1f} (need <= {args.max_seconds}); whole run {metrics['wall_seconds']:.1f} s wall, "
        f"{cpu_seconds:.1f} s CPU"
    )
    print(
        f"settings          epochs {metrics['epochs']}, batch size {metrics['batch_size']}, "
        f"learning rate {metrics['learning_rate']}, seed {metrics['seed']}, {metrics['train_examples']} training digits"
    )
    print(
        f"machine           {os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after (other work on the machine slows the run)"
    )
    if args.folds:
        work_dir = os.path.join(os.path.dirname(os.path.abspath(args.model_dir)), "bench-train-cv")
        print(f"cross-validating in {work_dir} (--folds {args.folds}, --cv-seed {args.cv_seed})", flush=True)
        print(cv_report(cross_validate(args.data_dir, work_dir, args.folds, args.cv_seed)), flush=True)
    failures = []
    if accuracy < args.min_accuracy:
        failures.append(f"accuracy {accuracy:.5f} < {args.min_accuracy}")
    if seconds > args.max_seconds:
        failures.append(f"training took {seconds:.1f} s > {args.max_seconds} s")
    if failures:
        print("FAIL: " + "; ".join(failures), flush=True)
        return 1
    print("PASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
