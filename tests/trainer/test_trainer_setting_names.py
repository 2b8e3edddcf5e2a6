"""The trainer's output folder is TRAIN_DIR, as in make and mnist-export; MODEL_DIR still works
for one release, with a warning naming TRAIN_DIR."""

from __future__ import annotations

from mnist_trainer.config import build_parser, parse_config


def test_train_dir_sets_the_model_dir(capsys):
    assert parse_config([], environ={"TRAIN_DIR": "runs/a"}).model_dir == "runs/a"
    assert capsys.readouterr().err == ""


def test_model_dir_still_works_with_a_deprecation_warning(capsys):
    assert parse_config([], environ={"MODEL_DIR": "runs/old"}).model_dir == "runs/old"
    err = capsys.readouterr().err
    assert "MODEL_DIR" in err and "deprecated" in err and "TRAIN_DIR" in err


def test_train_dir_wins_over_the_old_name(capsys):
    assert parse_config([], environ={"TRAIN_DIR": "new", "MODEL_DIR": "old"}).model_dir == "new"
    assert capsys.readouterr().err == ""


def test_help_names_train_dir():
    assert "env TRAIN_DIR" in " ".join(build_parser().format_help().split())
