"""`make bench-train`: train with the defaults, then measure accuracy on the held-out test digits.

Prints the test accuracy, the training seconds (the per-epoch loop: data pipeline, steps,
validation and checkpoints; not the TensorFlow import or the final save) and the machine's load,
and exits 1 when the accuracy is below --min-accuracy or the training took longer than
--max-seconds. The test split is never used by training or model selection.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from mnist_common import dataset, pipeline, storage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-bench train", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="trained model dir (a fresh one trains from scratch)")
    parser.add_argument("--data-dir", default="artifacts/data/mnist")
    parser.add_argument("--min-accuracy", type=float, default=0.99)
    parser.add_argument("--max-seconds", type=float, default=90.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    load_before = os.getloadavg()
    cpu_before = os.times()

    from mnist_trainer.cli import main as train_main

    train_argv = ["--data-dir", args.data_dir, "--model-dir", args.model_dir]
    print(f"$ mnist-train {shlex.join(train_argv)}", flush=True)
    status = train_main(train_argv)
    if status != 0:
        return status
    cpu_after = os.times()
    metrics = pipeline.read_training_metrics(args.model_dir)
    if metrics["resumed_from_epoch"] != 0:
        print(
            f"mnist-train-bench: error: {args.model_dir} held an earlier run; benchmark a fresh model dir",
            file=sys.stderr,
        )
        return 2

    import keras

    model = keras.models.load_model(storage.join(args.model_dir, pipeline.TRAINED_MODEL_FILE))
    test = dataset.load_split(args.data_dir, "test")
    probabilities = model.predict(test.as_float(), batch_size=500, verbose=0)
    correct = int((probabilities.argmax(axis=1) == test.labels).sum())
    accuracy = correct / len(test)
    seconds = metrics["training_seconds"]
    cpu_seconds = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)

    print(f"test accuracy     {accuracy:.5f} ({correct}/{len(test)} held-out digits; need >= {args.min_accuracy})")
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
