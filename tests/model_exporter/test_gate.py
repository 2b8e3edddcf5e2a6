"""The validation gate: a refused model leaves the base path byte-for-byte as it was."""

from __future__ import annotations

import json
import os
import threading

import pytest

from mnist_common.dataset import dataset_sha256, load_split
from mnist_exporter import exporter, saved_model, validation, warmup
from mnist_exporter.cli import main
from mnist_exporter.errors import EXIT_GATE_FAILURE, GateFailure
from mnist_exporter.validation import GateReport
from tests.model_exporter.exporter_helpers import export_args, snapshot


def test_untrained_model_is_refused_and_base_path_unchanged(untrained_dir, data_dir, base_copy, capsys):
    before = snapshot(base_copy)
    assert main(export_args(untrained_dir, data_dir, base_copy)) == EXIT_GATE_FAILURE
    assert snapshot(base_copy) == before

    err = capsys.readouterr().err
    assert "REFUSED" in err
    assert "failed check min-accuracy: validation accuracy 0." in err
    assert "is below --min-accuracy 0.5000" in err


def test_refused_export_does_not_create_the_base_path(trained_dir, data_dir, tmp_path, monkeypatch):
    """Staging needs the base path; a refusal removes what staging created, up to tmp_path.

    The export and the gate are stubbed (the real ones are covered above): this is about what
    is left on disk, and a real export would cost seconds.
    """
    staged = []

    def fake_export(model, export_dir):
        staged.append(export_dir)
        os.makedirs(os.path.join(export_dir, "variables"))
        open(os.path.join(export_dir, "saved_model.pb"), "wb").close()

    monkeypatch.setattr(saved_model, "export_saved_model", fake_export)
    monkeypatch.setattr(warmup, "write_warmup_file", lambda folder, logs: "unused")
    monkeypatch.setattr(validation, "run_gate", lambda *a, **k: GateReport(failures=["min-accuracy: stub"]))
    base = tmp_path / "models" / "mnist"
    assert main(export_args(trained_dir, data_dir, base)) == EXIT_GATE_FAILURE
    assert staged and staged[0].startswith(str(base))
    assert os.listdir(tmp_path) == []


def _fake_version(base: str, version: int, accuracy: float, data_dir: str) -> None:
    """A published version as far as listing and the model card go (never loaded here)."""
    folder = os.path.join(base, str(version))
    os.makedirs(os.path.join(folder, "assets.extra"))
    with open(os.path.join(folder, "saved_model.pb"), "wb") as handle:
        handle.write(b"placeholder")
    card = {"dataset_sha256": dataset_sha256(data_dir), "validation": {"accuracy": accuracy}}
    with open(os.path.join(folder, "assets.extra", "model_card.json"), "w") as handle:
        json.dump(card, handle)


class VersionWatcher(threading.Thread):
    """Polls the base path like TF Serving and records any version seen incomplete."""

    EXPECTED = {
        "saved_model.pb",
        "variables/variables.index",
        "assets.extra/model_card.json",
        "assets.extra/tf_serving_warmup_requests",
    }

    def __init__(self, base: str, watched_version: str):
        super().__init__(daemon=True)
        self.base, self.watched_version = base, watched_version
        self.stop, self.partial_sightings, self.complete_sightings = threading.Event(), [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            for name in os.listdir(self.base):
                if name != self.watched_version:
                    continue
                folder = os.path.join(self.base, name)
                files = {
                    os.path.relpath(os.path.join(root, f), folder) for root, _, names in os.walk(folder) for f in names
                }
                if self.EXPECTED <= files:
                    self.complete_sightings += 1
                else:
                    self.partial_sightings.append(sorted(files))


def test_regression_is_refused_unless_forced_then_retention_applies(trained_dir, data_dir, base_copy, capsys):
    # version 1 is the real export of this model; 2 and 3 claim far better accuracy
    _fake_version(base_copy, 2, 0.95, data_dir)
    _fake_version(base_copy, 3, 0.999, data_dir)
    before = snapshot(base_copy)

    assert main(export_args(trained_dir, data_dir, base_copy, "--republish")) == EXIT_GATE_FAILURE
    assert snapshot(base_copy) == before
    err = capsys.readouterr().err
    assert "failed check max-regression: validation accuracy 0." in err
    assert "version 3's 0.9990" in err and "--max-regression 0.0050" in err

    watcher = VersionWatcher(base_copy, "4")
    watcher.start()
    try:
        code = main(export_args(trained_dir, data_dir, base_copy, "--republish", "--force", "--keep-versions", "2"))
    finally:
        watcher.stop.set()
        watcher.join()
    assert code == 0
    assert watcher.partial_sightings == []
    assert sorted(os.listdir(base_copy)) == ["3", "4"]  # retention deleted 1 and 2
    out = capsys.readouterr().out
    assert "published version 4" in out and "deleted version(s) 1, 2" in out

    with open(os.path.join(base_copy, "4", "assets.extra", "model_card.json")) as handle:
        gate = json.load(handle)["gate"]
    assert gate["forced"] is True and gate["compared_with_version"] == 3
    assert "allowed by --force" in gate["notes"][0]


def test_same_training_run_is_not_published_twice(trained_dir, data_dir, base_copy, capsys):
    before = snapshot(base_copy)
    assert main(export_args(trained_dir, data_dir, base_copy)) == 0
    assert snapshot(base_copy) == before
    assert "version 1 already holds this training run" in capsys.readouterr().out


def test_baseline_is_measured_when_the_card_cannot_be_compared(published_base, base_copy, data_dir):
    """No card (or one from another data set): the newest version is loaded and measured."""
    with open(os.path.join(published_base, "1", "assets.extra", "model_card.json")) as handle:
        card_accuracy = json.load(handle)["validation"]["accuracy"]
    split = load_split(data_dir, "validation")
    digest = dataset_sha256(data_dir)
    assert exporter._baseline(base_copy, digest, split, force=False) == (1, card_accuracy)

    # a card measured on another data set does not count: 0.1 must not become the baseline
    card_path = os.path.join(base_copy, "1", "assets.extra", "model_card.json")
    with open(card_path, "w") as handle:
        json.dump({"dataset_sha256": "another data set", "validation": {"accuracy": 0.1}}, handle)
    version, measured = exporter._baseline(base_copy, digest, split, force=False)
    assert version == 1 and abs(measured - card_accuracy) < 1e-6


def test_unmeasurable_newest_version_blocks_publishing_unless_forced(tmp_path, data_dir):
    os.makedirs(tmp_path / "4")
    (tmp_path / "4" / "saved_model.pb").write_bytes(b"not a SavedModel")
    split = load_split(data_dir, "validation", limit=100)
    with pytest.raises(GateFailure) as failure:
        exporter._baseline(str(tmp_path), dataset_sha256(data_dir), split, force=False)
    assert "cannot measure the newest published version 4" in failure.value.failed_checks[0]
    assert exporter._baseline(str(tmp_path), dataset_sha256(data_dir), split, force=True) is None
