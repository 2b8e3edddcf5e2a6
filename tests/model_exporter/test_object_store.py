"""The gs:// publishing scheme, run for real through tf.io.gfile on file:// URIs.

mnist_common.storage treats any URI with a scheme as remote, so a file:// base path takes
exactly the code path a gs:// one does: local staging, upload with saved_model.pb last,
incomplete versions cleaned up, retention deleting saved_model.pb first.
"""

from __future__ import annotations

import os

from mnist_common import storage
from mnist_exporter import versions
from mnist_exporter.cli import main
from tests.model_exporter.exporter_helpers import export_args


def test_export_to_an_object_store_skips_and_removes_an_interrupted_upload(trained_dir, data_dir, tmp_path):
    base_dir = tmp_path / "bucket" / "mnist"
    # an upload killed before its saved_model.pb: not a version, but its number is used up
    os.makedirs(base_dir / "2" / "variables")
    (base_dir / "2" / "variables" / "variables.index").write_bytes(b"partial")
    base = "file://" + str(base_dir)
    assert versions.published_versions(base) == []
    assert versions.next_version(base) == 3

    assert main(export_args(trained_dir, data_dir, base)) == 0
    assert sorted(os.listdir(base_dir)) == ["3"]  # published, and the leftover removed
    published = base_dir / "3"
    for relative in (
        "saved_model.pb",
        "variables/variables.index",
        "assets.extra/tf_serving_warmup_requests",
        "assets.extra/model_card.json",
    ):
        assert (published / relative).is_file(), relative
    assert versions.published_versions(base) == [3]


def test_object_store_retention_deletes_saved_model_pb_first(tmp_path, monkeypatch):
    for version in (1, 2, 3):
        os.makedirs(tmp_path / str(version) / "variables")
        (tmp_path / str(version) / "saved_model.pb").write_bytes(b"x")
        (tmp_path / str(version) / "variables" / "variables.index").write_bytes(b"x")
    base = "file://" + str(tmp_path)
    calls = []
    real_remove_file, real_remove_tree = storage.remove_file, storage.remove_tree

    def remove_file(path):
        calls.append(("file", path))
        real_remove_file(path)

    def remove_tree(path):
        calls.append(("tree", path))
        real_remove_tree(path)

    monkeypatch.setattr(storage, "remove_file", remove_file)
    monkeypatch.setattr(storage, "remove_tree", remove_tree)
    assert versions.apply_retention(base, keep=1) == [1, 2]
    assert calls == [
        ("file", f"{base}/1/saved_model.pb"),
        ("tree", f"{base}/1"),
        ("file", f"{base}/2/saved_model.pb"),
        ("tree", f"{base}/2"),
    ]
    assert os.listdir(tmp_path) == ["3"]
