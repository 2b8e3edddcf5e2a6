"""assets.extra/model_card.json: what a published version is and how it was judged.

TF Serving ignores assets.extra except for its warmup file, so the card travels with the version
and is what the next export's regression check reads.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from typing import TYPE_CHECKING

from mnist_common import pipeline

if TYPE_CHECKING:  # validation imports TensorFlow; reading cards must not need it
    from mnist_exporter.validation import GateReport

# Where the card goes and its schema number are the pipeline's contract (make run reads it too).
CARD_DIR = pipeline.ASSETS_EXTRA_DIR
CARD_FILE = pipeline.MODEL_CARD_FILE
CARD_SCHEMA = pipeline.MODEL_CARD_SCHEMA


def git_commit() -> str:
    """GIT_COMMIT (set when images are built), else the checkout's HEAD, else 'unknown'."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=os.path.dirname(os.path.abspath(__file__)),  # an editable install is in a checkout
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "unknown"


def build_card(
    *,
    model_name: str,
    report: GateReport,
    dataset_sha256: str,
    training_metrics: dict,
    model_sha256: str,
    gate_settings: dict,
    data: dict | None = None,
) -> dict:
    evaluation = report.evaluation
    return {
        "schema": CARD_SCHEMA,
        "model_name": model_name,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "dataset_sha256": dataset_sha256,
        # Where the digits came from and how many each split holds (the data set's manifest).
        "data": data or {},
        "source": {"model_keras_sha256": model_sha256},
        "validation": {
            "split": "validation",
            "digits": evaluation.count,
            "accuracy": round(evaluation.accuracy, 6),
            "loss": round(evaluation.loss, 6),
            "per_class_accuracy": evaluation.per_class_accuracy,
            "image_bytes_agreement": report.image_bytes_agreement,
        },
        "gate": {
            **gate_settings,
            "compared_with_version": report.baseline_version,
            "compared_with_accuracy": report.baseline_accuracy,
            "notes": report.notes,
        },
        # Everything the trainer reported: epochs, batch size, learning rate, seed, timings ...
        "training": training_metrics,
    }


def data_summary(manifest: dict) -> dict:
    """The card's "data" part: the data set's source and its digits per split."""
    from mnist_common.dataset import SPLITS, labels_file

    files = manifest.get("files") or {}
    return {
        "source": manifest.get("source"),
        "origin": manifest.get("origin"),
        "seed": manifest.get("seed"),
        "digits": {split: (files.get(labels_file(split)) or {}).get("count") for split in SPLITS},
    }


def write_card(export_dir: str, card: dict) -> str:
    # A plain write: export_dir is the local staging folder, published as a whole afterwards.
    folder = os.path.join(export_dir, CARD_DIR)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CARD_FILE)
    with open(path, "w") as handle:
        handle.write(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return path


def read_card(base: str, version: int) -> dict | None:
    """The card of a published version, or None if it is missing or unreadable."""
    return pipeline.read_model_card(base, version)
