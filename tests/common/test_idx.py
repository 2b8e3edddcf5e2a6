"""IDX files: round trip, and every way a file can be broken is an error naming the file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from mnist_common import dataset, idx


def _images(count=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_preserves_every_byte(tmp_path, name):
    array = _images()
    path = str(tmp_path / name)
    idx.write(path, array)
    back = idx.read(path)
    assert back.dtype == np.uint8 and back.shape == (5, 28, 28)
    np.testing.assert_array_equal(back, array)


def test_header_is_the_standard_mnist_one():
    data = idx.encode(np.zeros((3, 28, 28), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">3I", data[4:16]) == (3, 28, 28)
    assert idx.encode(np.zeros(7, np.uint8))[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x07"


def test_gzip_output_is_deterministic(tmp_path):
    array = _images()
    idx.write(str(tmp_path / "a.gz"), array)
    idx.write(str(tmp_path / "b.gz"), array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def _write_raw(path, data: bytes):
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"\x01\x02" + d[2:], "bad magic"),
        (lambda d: d[:2] + b"\x42" + d[3:], "bad magic"),
        (lambda d: d[:-10], "truncated"),
        (lambda d: d[:10], "truncated header"),
        (lambda d: d + b"\x00\x00", "trailing bytes"),
        (lambda d: b"\x00\x00", "too short"),
    ],
    ids=["magic-zeros", "magic-dtype", "short-data", "short-header", "trailing", "tiny"],
)
def test_corrupt_files_are_errors_naming_the_file(tmp_path, mutate, message):
    path = _write_raw(tmp_path / "train-images-idx3-ubyte.gz", mutate(idx.encode(_images())))
    with pytest.raises(idx.IdxFormatError, match=message) as error:
        idx.read(path)
    assert path in str(error.value)


def test_truncated_gzip_stream_is_an_error(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx.encode(np.arange(100, dtype=np.uint8) % 10))[:-20])
    with pytest.raises(idx.IdxFormatError, match="corrupt or truncated gzip") as error:
        idx.read(str(path))
    assert str(path) in str(error.value)


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(idx.IdxFormatError, match="no such file"):
        idx.read(str(tmp_path / "nope.gz"))


def _write_split(folder, images, labels, split="train"):
    idx.write(str(folder / dataset.images_file(split)), images)
    idx.write(str(folder / dataset.labels_file(split)), labels)


def test_load_split_reads_matching_files(tmp_path):
    images, labels = _images(6), np.array([0, 1, 2, 3, 4, 5], np.uint8)
    _write_split(tmp_path, images, labels)
    split = dataset.load_split(str(tmp_path), "train")
    assert len(split) == 6
    assert split.as_float().dtype == np.float32 and split.as_float().max() <= 1.0
    np.testing.assert_array_equal(split.labels, labels)


def test_labels_and_images_disagreeing_in_count_is_an_error(tmp_path):
    _write_split(tmp_path, _images(6), np.zeros(5, np.uint8))
    with pytest.raises(dataset.DatasetError, match="5 labels but .* holds 6 images"):
        dataset.load_split(str(tmp_path), "train")


def test_swapped_files_are_an_error(tmp_path):
    _write_split(tmp_path, _images(6), np.zeros(6, np.uint8))
    images_path = tmp_path / dataset.images_file("train")
    labels_path = tmp_path / dataset.labels_file("train")
    data = images_path.read_bytes()
    images_path.write_bytes(labels_path.read_bytes())
    labels_path.write_bytes(data)
    with pytest.raises(idx.IdxFormatError, match="expected uint8 images of shape"):
        dataset.load_split(str(tmp_path), "train")


def test_label_outside_0_to_9_is_an_error(tmp_path):
    _write_split(tmp_path, _images(2), np.array([3, 12], np.uint8))
    with pytest.raises(idx.IdxFormatError, match="label 12 is not a digit"):
        dataset.load_split(str(tmp_path), "train")


def test_unknown_split_is_an_error(tmp_path):
    with pytest.raises(dataset.DatasetError, match="unknown split"):
        dataset.load_split(str(tmp_path), "training")
