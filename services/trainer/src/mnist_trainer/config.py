"""Command-line flags and environment variables of `mnist-train` (a flag wins over its variable)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata

from mnist_common.settings import read_setting

PROG = "mnist-train"


@dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    model_dir: str
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    limit: int | None  # use only the first N training digits (tiny runs, tests)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    default: object
    parse: Callable[[str], object]
    help: str
    old_envs: tuple[str, ...] = ()  # names the variable had before, accepted with a warning


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number")
    return value


def _path(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


# The defaults reach 99% on held-out digits from the default 8,000-digit data set in about a
# minute and a half on 2 CPU cores (see README.md and `make bench-train`).
OPTIONS = (
    _Option(
        "--data-dir",
        "DATA_DIR",
        "artifacts/data/mnist",
        _path,
        "prepared MNIST IDX files + manifest.json (local path or gs://)",
    ),
    _Option(
        "--model-dir",
        "TRAIN_DIR",
        "artifacts/training",
        _path,
        "where checkpoints/, logs/, model.keras and metrics.json go (local path or gs://; "
        "TRAIN_DIR as in make and mnist-export, MODEL_DIR before)",
        old_envs=("MODEL_DIR",),
    ),
    _Option("--epochs", "EPOCHS", 14, _positive_int, "passes over the training digits"),
    _Option(
        "--batch-size", "BATCH_SIZE", 128, _positive_int, "global batch size, split across workers when distributed"
    ),
    _Option(
        "--learning-rate",
        "LEARNING_RATE",
        3e-3,
        _positive_float,
        "peak learning rate of the warm-up + cosine-decay schedule (Adam)",
    ),
    _Option("--seed", "SEED", 0, _non_negative_int, "seed of weight initialisation, shuffling and augmentation"),
    _Option(
        "--limit",
        "TRAIN_LIMIT",
        None,
        _positive_int,
        "train on only the first N training digits (quick runs and tests)",
    ),
)


def _dest(option: _Option) -> str:
    return option.flag.lstrip("-").replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Train the MNIST CNN. Every flag can also be set by the environment variable shown; "
            "a flag wins over its variable. Killed part-way, the same command resumes from the "
            "last completed epoch. With TF_CONFIG naming several workers (as a Kubeflow TFJob "
            "sets it) it trains with MultiWorkerMirroredStrategy and only the chief writes."
        ),
        epilog="Exit status: 0 trained; 2 bad arguments, TF_CONFIG or data; 143 terminated by SIGTERM "
        "(rerun the same command to resume); 1 any other failure.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-trainer')}")
    for option in OPTIONS:
        default = "none: all" if option.default is None else option.default
        parser.add_argument(
            option.flag,
            dest=_dest(option),
            metavar=option.env,
            default=None,
            help=f"{option.help} (env {option.env}; default {default})",
        )
    return parser


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> TrainConfig:
    """Flags, then environment variables, then defaults; exits 2 naming the bad flag or variable."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    values = {}
    for option in OPTIONS:
        flag_value = getattr(args, _dest(option))
        env_value = None if flag_value is not None else read_setting(option.env, *option.old_envs, environ=environ)
        if flag_value is not None:
            text, source = flag_value, f"argument {option.flag}"
        elif env_value is not None:
            text, source = env_value, f"environment variable {option.env}"
        else:
            values[_dest(option)] = option.default
            continue
        try:
            values[_dest(option)] = option.parse(text)
        except ValueError as error:
            reason = str(error) if "must" in str(error) else "not a valid number"
            parser.error(f"{source}: {text!r} {reason}")
    return TrainConfig(**values)
