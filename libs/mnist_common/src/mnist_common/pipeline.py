"""The pipeline's file contracts: what each stage writes and the next one reads.

    data dir        manifest.json + IDX files           (mnist_common.dataset)
    training dir    model.keras, then metrics.json      trainer -> exporter, make run
    model base path <N>/saved_model.pb ...              exporter -> model server, web UI bench
    <N>/assets.extra/model_card.json                    exporter -> exporter (regression gate), make run, web UI
    <N>/assets.extra/evaluation.json                    exporter -> web UI's /model page (held-out figures)
    <N>/assets.extra/tf_serving_warmup_requests         exporter -> model server (TF Serving's own name)

Everything here is names, rules and pure decisions; nothing imports TensorFlow, so make, the
orchestrator and the model server can ask these questions in a moment. The writers (the trainer's
artifacts module, the exporter's versions and model_card modules) use these names and rules, and
nothing else declares them again.

`python -m mnist_common.pipeline has-version BASE` exits 0 when BASE holds a published version
(make uses it before starting a model server).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mnist_common import storage

# ---- The trainer's outputs (its model dir) ---------------------------------------------------
TRAINED_MODEL_FILE = "model.keras"
# Written last: its presence means model.keras is complete and the run finished.
TRAINING_METRICS_FILE = "metrics.json"
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"

# ---- A published version (<base>/<N>/) ---------------------------------------------------------
SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_EXTRA_DIR = "assets.extra"
MODEL_CARD_FILE = "model_card.json"
MODEL_CARD_SCHEMA = 1
WARMUP_FILE = "tf_serving_warmup_requests"
# The held-out (test split) evaluation, for people to look at; no decision reads it.
EVALUATION_FILE = "evaluation.json"


def is_version_name(name: str) -> bool:
    """TF Serving's rule: only a folder whose whole name is decimal digits is a version."""
    return name.isascii() and name.isdigit()


def version_path(base: str, version: int) -> str:
    return storage.join(base, str(version))


def all_version_numbers(base: str) -> list[int]:
    """Every version-named child of base, complete or not, ascending."""
    if not storage.isdir(base):
        return []
    return sorted(int(name) for name in storage.listdir(base) if is_version_name(name))


def is_complete(base: str, version: int) -> bool:
    """A version is loadable once saved_model.pb is there (the exporter writes it last)."""
    return storage.exists(storage.join(version_path(base, version), SAVED_MODEL_FILE))


def published_versions(base: str) -> list[int]:
    """Versions a model server can load, ascending."""
    return [version for version in all_version_numbers(base) if is_complete(base, version)]


def model_card_path(base: str, version: int) -> str:
    return storage.join(version_path(base, version), ASSETS_EXTRA_DIR, MODEL_CARD_FILE)


def evaluation_path(base: str, version: int) -> str:
    return storage.join(version_path(base, version), ASSETS_EXTRA_DIR, EVALUATION_FILE)


def warmup_path(version_dir: str) -> str:
    return storage.join(version_dir, ASSETS_EXTRA_DIR, WARMUP_FILE)


def read_json_object(path: str) -> dict | None:
    """A JSON object file, or None when it is missing, unreadable or not an object."""
    try:
        document = json.loads(storage.read_bytes(path))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def read_model_card(base: str, version: int) -> dict | None:
    return read_json_object(model_card_path(base, version))


def read_evaluation(base: str, version: int) -> dict | None:
    return read_json_object(evaluation_path(base, version))


def read_training_metrics(train_dir: str) -> dict | None:
    return read_json_object(storage.join(train_dir, TRAINING_METRICS_FILE))


# ---- "Are these the same training inputs?" ------------------------------------------------------
# A model is described by its training inputs: the data set's sha256 (from the data manifest) and
# the trainer's parameters. The trainer records them in metrics.json (under "inputs"), and the
# exporter copies metrics.json into every version's model card (under "training"). File
# timestamps cannot tell: a data dir rewritten with the same digits is the same data.

REUSE = "reuse"
EXPORT = "export"
TRAIN = "train"


@dataclass(frozen=True)
class TrainingInputs:
    """What decides the model: the data set and the trainer's parameters."""

    dataset_sha256: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


def recorded_inputs(training_record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The inputs a metrics.json (or a card's "training" part) records: under "inputs" (what
    mnist-train writes), else at the top level (older records)."""
    nested = training_record.get("inputs")
    return nested if isinstance(nested, Mapping) else training_record


def _same_value(wanted: Any, recorded: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(recorded, bool):
        return wanted == recorded
    if isinstance(wanted, (int, float)) and isinstance(recorded, (int, float)):
        return math.isclose(wanted, recorded, rel_tol=1e-9, abs_tol=0.0)
    return wanted == recorded


def _short(digest: str | None) -> str:
    return "none" if not digest else digest[:12]


def input_differences(wanted: TrainingInputs, dataset_sha256: str | None, record: Mapping[str, Any]) -> list[str]:
    """What differs between the wanted inputs and a recorded training, in words (empty: none).

    Only the wanted parameters are compared, so a caller decides which inputs matter.
    """
    found = []
    if dataset_sha256 != wanted.dataset_sha256:
        found.append(f"the data changed (dataset sha256 {_short(dataset_sha256)} -> {_short(wanted.dataset_sha256)})")
    parameters = recorded_inputs(record)
    for name, value in sorted(wanted.parameters.items()):
        recorded = parameters.get(name)
        if not _same_value(value, recorded):
            found.append(f"{name} {recorded!r} -> {value!r}")
    return found


def inputs_of(training_record: Mapping[str, Any]) -> TrainingInputs:
    """The TrainingInputs a metrics.json records (every recorded input counts)."""
    inputs = dict(recorded_inputs(training_record))
    return TrainingInputs(str(inputs.pop("dataset_sha256", training_record.get("dataset_sha256", ""))), inputs)


def same_training_inputs(wanted: TrainingInputs, dataset_sha256: str | None, record: Mapping[str, Any]) -> bool:
    return not input_differences(wanted, dataset_sha256, record)


@dataclass(frozen=True)
class Plan:
    action: str  # REUSE, EXPORT or TRAIN
    reason: str
    version: int | None = None  # the published version reused


def decide(
    wanted: TrainingInputs,
    newest_published: tuple[int, Mapping[str, Any] | None] | None,
    training_metrics: Mapping[str, Any] | None,
) -> Plan:
    """Reuse the newest published version, export the finished training, or train anew.

    newest_published: (version, its model card or None if unreadable), None if nothing is
    published. training_metrics: the training dir's metrics.json, None if there is none.
    """
    why_not_published = "no version is published"
    if newest_published is not None:
        version, card = newest_published
        if card is None:
            why_not_published = f"version {version} has no readable model card"
        else:
            changed = input_differences(wanted, card.get("dataset_sha256"), card.get("training") or {})
            if not changed:
                return Plan(REUSE, f"version {version} was trained on the same data with the same parameters", version)
            why_not_published = f"version {version} differs: " + "; ".join(changed)

    if training_metrics is not None:
        changed = input_differences(wanted, training_metrics.get("dataset_sha256"), training_metrics)
        if not changed:
            return Plan(EXPORT, f"{why_not_published}; the finished training matches, so only export it")
        return Plan(TRAIN, f"{why_not_published}; the last training differs too: " + "; ".join(changed))
    return Plan(TRAIN, f"{why_not_published}; nothing is trained yet")


def newest_published(base: str) -> tuple[int, dict | None] | None:
    """(newest version a model server would serve, its model card or None), None if none."""
    versions = published_versions(base)
    if not versions:
        return None
    return versions[-1], read_model_card(base, versions[-1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "has-version":
        return 0 if published_versions(args[1]) else 1
    print("usage: python -m mnist_common.pipeline has-version MODEL_BASE_PATH", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
