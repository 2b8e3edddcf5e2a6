"""Bad arguments, TF_CONFIG or data: exit status 2 and a message naming the flag, variable or file.

All of these fail before TensorFlow is imported, so they are fast.
"""

from __future__ import annotations

import gzip
import shutil

import pytest

from tests.trainer.trainer_helpers import run_trainer


@pytest.fixture()
def data_copy(data_dir, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    return copy


def assert_refused(result, *expected_in_message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "mnist-train: error:" in result.stderr
    for text in expected_in_message:
        assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_dir_names_the_manifest(tmp_path):
    result = run_trainer("--data-dir", str(tmp_path / "nowhere"), "--model-dir", str(tmp_path / "model"))
    assert_refused(result, str(tmp_path / "nowhere" / "manifest.json"), "make data")
    assert not (tmp_path / "model").exists()


def test_truncated_images_file_is_named(data_copy, tmp_path):
    images = data_copy / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))
    result = run_trainer("--data-dir", str(data_copy), "--model-dir", str(tmp_path / "model"))
    assert_refused(result, str(images))


def test_garbage_labels_file_is_named(data_copy, tmp_path):
    labels = data_copy / "validation-labels-idx1-ubyte.gz"
    labels.write_bytes(b"this is not gzip")
    result = run_trainer("--data-dir", str(data_copy), "--model-dir", str(tmp_path / "model"))
    assert_refused(result, str(labels))


def test_fewer_digits_than_one_batch(data_dir, tmp_path):
    result = run_trainer(
        "--data-dir", data_dir, "--model-dir", str(tmp_path / "model"), "--limit", "50", "--batch-size", "64"
    )
    assert_refused(result, "fewer than one batch", "--batch-size 64")
    assert not (tmp_path / "model").exists()


def test_malformed_tf_config(data_dir, tmp_path):
    result = run_trainer("--data-dir", data_dir, "--model-dir", str(tmp_path / "model"), TF_CONFIG="{oops")
    assert_refused(result, "TF_CONFIG is not valid JSON")


def test_model_dir_that_is_a_file(data_dir, tmp_path):
    a_file = tmp_path / "model"
    a_file.write_text("")
    result = run_trainer("--data-dir", data_dir, "--model-dir", str(a_file))
    assert_refused(result, "--model-dir", "is a file")


def test_bad_flag_and_bad_variable(tmp_path):
    assert_refused(run_trainer("--epochs", "zero"), "argument --epochs")
    assert_refused(run_trainer(EPOCHS="-2"), "environment variable EPOCHS")
