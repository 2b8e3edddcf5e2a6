"""Missing or corrupt inputs and bad flags: exit 2 with a message naming the file or flag."""

from __future__ import annotations

import os
import shutil

import pytest

from mnist_exporter.cli import main
from mnist_exporter.errors import EXIT_INPUT_ERROR
from tests.model_exporter.exporter_helpers import export_args


@pytest.fixture
def train_copy(trained_dir, tmp_path) -> str:
    destination = tmp_path / "training"
    shutil.copytree(trained_dir, destination)
    return os.fspath(destination)


def _run(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def test_missing_metrics_means_training_not_finished(train_copy, data_dir, tmp_path, capsys):
    os.remove(os.path.join(train_copy, "metrics.json"))
    code, err = _run(capsys, *export_args(train_copy, data_dir, tmp_path / "base"))
    assert code == EXIT_INPUT_ERROR
    assert os.path.join(train_copy, "metrics.json") in err and "is missing" in err and "make train" in err
    assert not (tmp_path / "base").exists()


def test_missing_model(train_copy, data_dir, tmp_path, capsys):
    os.remove(os.path.join(train_copy, "model.keras"))
    code, err = _run(capsys, *export_args(train_copy, data_dir, tmp_path / "base"))
    assert code == EXIT_INPUT_ERROR
    assert os.path.join(train_copy, "model.keras") in err and "is missing" in err


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("metrics.json", b"{not json", "metrics.json: corrupt, not valid JSON"),
        ("metrics.json", b"[1, 2]", "metrics.json: corrupt, expected a JSON object"),
        ("model.keras", b"PK\x03\x04 truncated zip", "model.keras: corrupt, not a loadable Keras model"),
    ],
)
def test_corrupt_trainer_output(train_copy, data_dir, tmp_path, capsys, name, content, expected):
    with open(os.path.join(train_copy, name), "wb") as handle:
        handle.write(content)
    code, err = _run(capsys, *export_args(train_copy, data_dir, tmp_path / "base"))
    assert code == EXIT_INPUT_ERROR
    assert expected in err
    assert not (tmp_path / "base").exists()


def test_missing_validation_data(trained_dir, tmp_path, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    code, err = _run(capsys, *export_args(trained_dir, empty, tmp_path / "base"))
    assert code == EXIT_INPUT_ERROR
    assert "validation-images-idx3-ubyte.gz" in err and "make data" in err


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--min-accuracy", "1.5", "argument --min-accuracy: 1.5 is not between 0 and 1"),
        ("--max-regression", "lots", "argument --max-regression: 'lots' is not a number"),
        ("--keep-versions", "0", "argument --keep-versions: 0 is less than 1"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(tmp_path, capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model-base-path", str(tmp_path), flag, value])
    assert exit_info.value.code == EXIT_INPUT_ERROR
    assert expected in capsys.readouterr().err
