"""What the /model page says about a published version: its model card, its held-out evaluation
and its training curves, read from the files the exporter wrote beside it (mnist_common.pipeline)
and never computed here.

A published version's files do not change, so each version's view is read once per process and
kept; a version whose card is not there yet is read again next time. Whatever is missing (an
older export without an evaluation, a card without training curves, no base path at all) is said
in words, part by part, so a person sees what is known and what is not.
"""

from __future__ import annotations

import logging
import threading

from mnist_common import pipeline, storage

log = logging.getLogger(__name__)

# The trainer's settings shown on the card, in this order, when the card records them.
TRAINING_PARAMETERS = (
    "architecture",
    "epochs",
    "batch_size",
    "learning_rate",
    "seed",
    "limit",
    "train_examples",
    "training_seconds",
    "num_workers",
    "tensorflow_version",
)


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def card_summary(version: int, card: dict) -> dict:
    """The card's parts a person reads: what, when, from which commit, on what data, how trained,
    and the exporter's gate figures."""
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    inputs = pipeline.recorded_inputs(training)
    validation = card.get("validation") if isinstance(card.get("validation"), dict) else {}
    gate = card.get("gate") if isinstance(card.get("gate"), dict) else {}
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    parameters = {}
    for name in TRAINING_PARAMETERS:
        value = inputs.get(name, training.get(name))
        if value is not None:
            parameters[name] = value
    return {
        "model_name": card.get("model_name"),
        "version": version,
        "created": card.get("created"),
        "git_commit": card.get("git_commit"),
        "dataset_sha256": card.get("dataset_sha256"),
        "data": {
            "source": data.get("source"),
            "origin": data.get("origin"),
            "digits": data.get("digits") if isinstance(data.get("digits"), dict) else None,
        },
        "training_parameters": parameters,
        "gate": {
            "validation_digits": _number(validation.get("digits")),
            "validation_accuracy": _number(validation.get("accuracy")),
            "validation_loss": _number(validation.get("loss")),
            "image_bytes_agreement": _number(validation.get("image_bytes_agreement")),
            "min_accuracy": _number(gate.get("min_accuracy")),
            "max_regression": _number(gate.get("max_regression")),
            "forced": gate.get("forced"),
            "compared_with_version": gate.get("compared_with_version"),
            "compared_with_accuracy": _number(gate.get("compared_with_accuracy")),
            "notes": [str(note) for note in gate.get("notes") or []],
        },
    }


def training_curves(card: dict) -> dict | None:
    """Loss and accuracy per epoch (the trainer's metrics, copied into the card), or None."""
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    history = training.get("history")
    if not isinstance(history, list) or not history:
        return None
    epochs = [
        {key: entry.get(key) for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")}
        for entry in history
        if isinstance(entry, dict) and isinstance(entry.get("epoch"), int)
    ]
    if not epochs:
        return None
    exported = training.get("exported_epoch")
    return {"epochs": epochs, "exported_epoch": exported if isinstance(exported, int) else epochs[-1]["epoch"]}


def version_view(base: str, version: int) -> dict:
    """Everything the page shows of one version, with a sentence for each part that is missing."""
    missing = []
    card = pipeline.read_model_card(base, version)
    evaluation = pipeline.read_evaluation(base, version)
    if card is None:
        missing.append(
            f"model card: version {version} has no readable {pipeline.ASSETS_EXTRA_DIR}/{pipeline.MODEL_CARD_FILE} "
            "(exported by another tool, or its files are not readable from here)"
        )
    if evaluation is None:
        reason = (card or {}).get("evaluation_missing")
        missing.append(
            f"held-out evaluation: version {version} "
            + (
                f"was exported without one: {reason}"
                if reason
                else "was exported before held-out evaluations were written"
            )
            + " - no test-split accuracy, confusion matrix, per-digit bars or mistakes to show"
        )
    curves = training_curves(card) if card else None
    if card is not None and curves is None:
        missing.append(
            f"training curves: the trainer's metrics in version {version}'s card have no per-epoch history "
            "(trained before the trainer recorded one)"
        )
    return {
        "version": version,
        "card": card_summary(version, card) if card else None,
        "evaluation": evaluation,
        "training": curves,
        "missing": missing,
    }


class ModelCards:
    """Version views from a model base path, each read once per process."""

    def __init__(self, base_path: str):
        self.base_path = base_path
        self._lock = threading.Lock()
        self._views: dict[int, dict] = {}

    def unavailable(self) -> str | None:
        """Why no version can be described here, or None."""
        if not self.base_path:
            return "the web UI was started without MODEL_BASE_PATH, so it cannot read the model cards"
        if storage.is_remote(self.base_path):
            # Reading a bucket needs TensorFlow's file systems, which the web UI does not carry.
            return f"the model cards are in {self.base_path}, which the web UI does not read (local paths only)"
        return None

    def view(self, version: int) -> dict:
        why = self.unavailable()
        if why:
            return {"version": version, "card": None, "evaluation": None, "training": None, "missing": [why]}
        with self._lock:
            known = self._views.get(version)
        if known is not None:
            return known
        view = version_view(self.base_path, version)
        if view["card"] is not None:  # complete once its card is there: keep it
            with self._lock:
                self._views[version] = view
        return view

    def published(self) -> list[int]:
        if self.unavailable():
            return []
        try:
            return pipeline.published_versions(self.base_path)
        except OSError as error:
            log.warning("cannot list the versions in %s: %s", self.base_path, error)
            return []
