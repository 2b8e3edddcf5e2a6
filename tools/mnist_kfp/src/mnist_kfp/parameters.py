"""The pipeline's parameters and where their defaults come from: nothing is declared again here.

    training   kustomize/base/training.env (what the cluster's Job and TFJob read), and for a
               setting the file leaves out, mnist-train's own default (mnist_trainer.config.OPTIONS)
    the rest   make's variables (MIN_ACCURACY, MAX_REGRESSION, KEEP_VERSIONS, CANARY_PERCENT,
               DATA_SOURCE, MODEL_NAME), which `make pipeline` hands over as NAME=value pairs; an
               empty CANARY_PERCENT is the rollout's default, as for make export and make deploy

Pure Python: the compile step and the tests read it without the Kubeflow Pipelines SDK.
"""

from __future__ import annotations

import dataclasses
import pathlib

from mnist_trainer.config import OPTIONS

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
TRAINING_ENV = REPO_ROOT / "kustomize" / "base" / "training.env"

# The trainer's settings the pipeline exposes, by their one name (env name -> pipeline parameter).
TRAINING = {"EPOCHS": "epochs", "BATCH_SIZE": "batch_size", "LEARNING_RATE": "learning_rate", "SEED": "seed"}
# make's variables the pipeline exposes (make name -> pipeline parameter, Python type).
FROM_MAKE = {
    "DATA_SOURCE": ("data_source", str),
    "MIN_ACCURACY": ("min_accuracy", float),
    "MAX_REGRESSION": ("max_regression", float),
    "KEEP_VERSIONS": ("keep_versions", int),
    "CANARY_PERCENT": ("canary_percent", float),
    "MODEL_NAME": ("model_name", str),
}


class ParameterError(ValueError):
    """A parameter value that does not parse or is out of range; the message names it."""


def training_env(path: pathlib.Path = TRAINING_ENV) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def training_defaults(path: pathlib.Path = TRAINING_ENV) -> dict[str, object]:
    """{pipeline parameter: value}: training.env's values, typed as mnist-train parses them."""
    options = {option.env: option for option in OPTIONS}
    values = training_env(path)
    defaults = {}
    for env, parameter in TRAINING.items():
        option = options[env]
        text = values.get(env)
        try:
            defaults[parameter] = option.default if text is None else option.parse(text)
        except ValueError as error:
            raise ParameterError(f"{path}: {env}={text!r}: {error}") from None
    return defaults


@dataclasses.dataclass(frozen=True)
class Images:
    """The content-tagged references `make image-tags` names (registry/name:tag)."""

    trainer: str
    exporter: str

    @classmethod
    def from_pairs(cls, pairs: list[str]) -> Images:
        refs = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        missing = [name for name in ("mnist-trainer", "mnist-model-exporter") if not refs.get(name)]
        if missing:
            raise ParameterError(f"--image NAME=REF is needed for {', '.join(missing)} (make pipeline passes them)")
        return cls(trainer=refs["mnist-trainer"], exporter=refs["mnist-model-exporter"])


def make_defaults(pairs: list[str]) -> dict[str, object]:
    """{pipeline parameter: value} from make's NAME=value pairs, each parsed and checked."""
    given = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    unknown = sorted(set(given) - set(FROM_MAKE))
    if unknown:
        raise ParameterError(f"unknown setting(s) {', '.join(unknown)}: expected {', '.join(FROM_MAKE)}")
    if given.get("CANARY_PERCENT") == "":  # make's empty CANARY_PERCENT: the rollout's own default
        from mnist_common.rollout.transitions import DEFAULT_CANARY_PERCENT

        given["CANARY_PERCENT"] = str(DEFAULT_CANARY_PERCENT)
    defaults = {}
    for name, (parameter, kind) in FROM_MAKE.items():
        if name not in given:
            raise ParameterError(f"{name} is not given (make pipeline passes every one of {', '.join(FROM_MAKE)})")
        try:
            defaults[parameter] = kind(given[name])
        except ValueError:
            raise ParameterError(f"{name}={given[name]!r} is not a {kind.__name__}") from None
    percent = defaults["canary_percent"]
    if not 0 < percent < 100:
        raise ParameterError(f"CANARY_PERCENT={percent:g} must be above 0 and below 100: never all traffic at once")
    return defaults
