"""Flags and environment variables of mnist-train: defaults, precedence, bad values, --help."""

from __future__ import annotations

import pytest

from mnist_trainer.config import OPTIONS, parse_config


def test_defaults_without_flags_or_environment():
    config = parse_config([], environ={})
    assert config.data_dir == "artifacts/data/mnist"
    assert config.model_dir == "artifacts/training"
    assert config.limit is None
    assert config.epochs >= 1 and config.batch_size >= 1 and config.learning_rate > 0


def test_environment_variables_set_every_option():
    environ = {
        "DATA_DIR": "d",
        "TRAIN_DIR": "gs://bucket/run",
        "EPOCHS": "3",
        "BATCH_SIZE": "32",
        "LEARNING_RATE": "0.01",
        "SEED": "7",
        "TRAIN_LIMIT": "500",
    }
    config = parse_config([], environ=environ)
    assert (config.data_dir, config.model_dir, config.epochs, config.batch_size) == ("d", "gs://bucket/run", 3, 32)
    assert (config.learning_rate, config.seed, config.limit) == (0.01, 7, 500)


def test_flags_win_over_environment_variables():
    environ = {"EPOCHS": "3", "TRAIN_DIR": "from-env", "LEARNING_RATE": "0.5"}
    config = parse_config(["--epochs", "5", "--model-dir", "from-flag"], environ=environ)
    assert (config.epochs, config.model_dir) == (5, "from-flag")
    assert config.learning_rate == 0.5  # no flag given: the variable still applies


def test_empty_environment_variable_means_unset():
    assert parse_config([], environ={"EPOCHS": ""}).epochs == parse_config([], environ={}).epochs


@pytest.mark.parametrize(
    "argv, environ, named",
    [
        (["--epochs", "0"], {}, "argument --epochs: '0' must be at least 1"),
        (["--batch-size", "many"], {}, "argument --batch-size: 'many' not a valid number"),
        (["--learning-rate", "-1"], {}, "argument --learning-rate: '-1' must be a positive number"),
        (["--learning-rate", "nan"], {}, "argument --learning-rate"),
        (["--seed", "-3"], {}, "argument --seed"),
        (["--limit", "0"], {}, "argument --limit"),
        (["--model-dir", " "], {}, "argument --model-dir"),
        ([], {"EPOCHS": "ten"}, "environment variable EPOCHS: 'ten' not a valid number"),
        ([], {"BATCH_SIZE": "0"}, "environment variable BATCH_SIZE"),
        (["--no-such-flag"], {}, "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_values_exit_2_naming_the_flag_or_variable(argv, environ, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv, environ=environ)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "mnist-train: error:" in stderr and named in stderr


def test_help_documents_every_flag_and_variable(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--help"], environ={})
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in OPTIONS:
        assert option.flag in help_text and option.env in help_text
    assert "TF_CONFIG" in help_text and "resumes" in help_text
