"""Does the published model still match what `make run` would train? A pure decision.

A model is described by its training inputs: the data set's sha256 (from the data manifest) and
the trainer's parameters (epochs, batch size, ...). The exporter copies the trainer's
metrics.json, which records those inputs, into every version's model card, so comparing
  wanted inputs  <->  newest published version's card   (what TF Serving serves)
  wanted inputs  <->  the training dir's metrics.json   (trained, maybe not published yet)
tells `make run` to reuse the served model, to only export, or to train and export. File
timestamps cannot tell: a data dir rewritten with the same digits is the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

REUSE = "reuse"
EXPORT = "export"
TRAIN = "train"


@dataclass(frozen=True)
class TrainingInputs:
    """What decides the model: the data set and the trainer's parameters."""

    dataset_sha256: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    action: str  # REUSE, EXPORT or TRAIN
    reason: str
    version: int | None = None  # the published version reused


def _same_value(wanted: Any, recorded: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(recorded, bool):
        return wanted == recorded
    if isinstance(wanted, (int, float)) and isinstance(recorded, (int, float)):
        return math.isclose(wanted, recorded, rel_tol=1e-9, abs_tol=0.0)
    return wanted == recorded


def recorded_parameters(training_record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The parameters a trainer's metrics.json records: under "inputs" (what mnist-train
    writes: everything that decides the model), else at the top level."""
    nested = training_record.get("inputs")
    return nested if isinstance(nested, Mapping) else training_record


def differences(wanted: TrainingInputs, dataset_sha256: str | None, record: Mapping[str, Any]) -> list[str]:
    """What differs between the wanted inputs and a recorded training, in words (empty: none)."""
    found = []
    if dataset_sha256 != wanted.dataset_sha256:
        found.append(f"the data changed (dataset sha256 {_short(dataset_sha256)} -> {_short(wanted.dataset_sha256)})")
    parameters = recorded_parameters(record)
    for name, value in sorted(wanted.parameters.items()):
        recorded = parameters.get(name)
        if not _same_value(value, recorded):
            found.append(f"{name} {recorded!r} -> {value!r}")
    return found


def _short(digest: str | None) -> str:
    return "none" if not digest else digest[:12]


def decide(
    wanted: TrainingInputs,
    newest_published: tuple[int, Mapping[str, Any] | None] | None,
    training_metrics: Mapping[str, Any] | None,
) -> Plan:
    """Reuse the newest published version, export the finished training, or train anew.

    newest_published: (version, its model card or None if unreadable), None if nothing is
    published. training_metrics: the training dir's metrics.json, None if there is none (the
    trainer writes it last, so its presence means model.keras is complete).
    """
    why_not_published = "no version is published"
    if newest_published is not None:
        version, card = newest_published
        if card is None:
            why_not_published = f"version {version} has no readable model card"
        else:
            changed = differences(wanted, card.get("dataset_sha256"), card.get("training") or {})
            if not changed:
                return Plan(REUSE, f"version {version} was trained on the same data with the same parameters", version)
            why_not_published = f"version {version} differs: " + "; ".join(changed)

    if training_metrics is not None:
        changed = differences(wanted, training_metrics.get("dataset_sha256"), training_metrics)
        if not changed:
            return Plan(EXPORT, f"{why_not_published}; the finished training matches, so only export it")
        return Plan(TRAIN, f"{why_not_published}; the last training differs too: " + "; ".join(changed))
    return Plan(TRAIN, f"{why_not_published}; nothing is trained yet")
