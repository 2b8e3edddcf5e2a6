"""Version numbering, retention, stale leftovers and the gs:// upload order (on local disk)."""

from __future__ import annotations

import os

import pytest

from mnist_common import storage
from mnist_exporter import versions
from mnist_exporter.errors import PublishConflict


def _version(base, name, complete=True):
    folder = os.path.join(base, str(name))
    os.makedirs(os.path.join(folder, "variables"))
    if complete:
        open(os.path.join(folder, "saved_model.pb"), "wb").close()
    return folder


def _staged(base_dir) -> str:
    staging = os.path.join(base_dir, "staged")
    os.makedirs(os.path.join(staging, "variables"))
    os.makedirs(os.path.join(staging, "assets.extra"))
    for relative in ("saved_model.pb", "fingerprint.pb", "variables/variables.index", "assets.extra/model_card.json"):
        with open(os.path.join(staging, relative), "w") as handle:
            handle.write(relative)
    return staging


def test_numbering_starts_at_one_and_only_grows(tmp_path):
    base = str(tmp_path / "mnist")
    assert versions.next_version(base) == 1  # no base path yet
    os.makedirs(base)
    assert versions.next_version(base) == 1
    for name in ("1", "2", "10"):
        _version(base, name)
    _version(base, "11", complete=False)  # an interrupted upload still uses up its number
    os.makedirs(os.path.join(base, ".staging-abc"))
    os.makedirs(os.path.join(base, "99-notes"))
    assert versions.all_version_numbers(base) == [1, 2, 10, 11]
    assert versions.published_versions(base) == [1, 2, 10]
    assert versions.next_version(base) == 12


def test_retention_keeps_the_newest(tmp_path):
    base = str(tmp_path)
    for name in (1, 2, 3, 4, 5):
        _version(base, name)
    assert versions.apply_retention(base, keep=3) == [1, 2]
    assert sorted(os.listdir(base)) == ["3", "4", "5"]
    assert versions.apply_retention(base, keep=3) == []
    with pytest.raises(ValueError):
        versions.apply_retention(base, keep=0)


def test_clean_stale_removes_only_leftovers(tmp_path):
    base = str(tmp_path)
    _version(base, 1)
    _version(base, 2, complete=False)  # local: not ours to judge, kept
    os.makedirs(os.path.join(base, ".staging-0123"))
    os.makedirs(os.path.join(base, ".deleting-7-abcd"))
    assert sorted(versions.clean_stale(base)) == [".deleting-7-abcd", ".staging-0123"]
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_publish_by_rename_refuses_an_existing_version(tmp_path):
    base = str(tmp_path / "base")
    staging = versions.new_staging_dir(base)
    os.makedirs(staging)
    open(os.path.join(staging, "saved_model.pb"), "w").close()
    _version(base, 1)
    with pytest.raises(PublishConflict):
        versions.publish_by_rename(staging, base, 1)
    assert versions.publish_by_rename(staging, base, 2) == os.path.join(base, "2")
    assert not os.path.exists(staging)


def test_copy_publishing_uploads_saved_model_pb_last(tmp_path, monkeypatch):
    """The gs:// scheme: every other file exists before the one that makes it a SavedModel."""
    staging = _staged(tmp_path)
    base = str(tmp_path / "bucket")
    copied = []
    real_copy = storage.copy_file

    def recording_copy(source, destination):
        # at the moment saved_model.pb lands, everything else must already be there
        if destination.endswith("saved_model.pb"):
            assert len(copied) == 3
        copied.append(os.path.relpath(destination, os.path.join(base, "7")))
        real_copy(source, destination)

    monkeypatch.setattr(storage, "copy_file", recording_copy)
    versions.publish_by_copy(staging, base, 7)
    assert copied[-1] == "saved_model.pb"
    assert sorted(copied) == sorted(
        [
            "saved_model.pb",
            "fingerprint.pb",
            os.path.join("variables", "variables.index"),
            os.path.join("assets.extra", "model_card.json"),
        ]
    )
    with open(os.path.join(base, "7", "variables", "variables.index")) as handle:
        assert handle.read() == "variables/variables.index"
    with pytest.raises(PublishConflict):
        versions.publish_by_copy(staging, base, 7)


def test_list_versions_reads_model_cards(published_base, tmp_path, capsys):
    from mnist_exporter import list_versions

    assert list_versions.main([published_base]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:2] == ["1", "accuracy"]
    assert list_versions.main([str(tmp_path / "nothing")]) == 0
    assert "no versions" in capsys.readouterr().out


def test_rename_not_supported_falls_back_to_copying(tmp_path, monkeypatch):
    """e.g. a Cloud Storage FUSE mount of a flat bucket cannot rename folders."""
    import errno

    base = str(tmp_path / "base")

    def stage() -> str:
        staging = versions.new_staging_dir(base)
        os.makedirs(os.path.join(staging, "variables"))
        for relative in ("saved_model.pb", os.path.join("variables", "variables.index")):
            with open(os.path.join(staging, relative), "w") as handle:
                handle.write(relative)
        return staging

    def rename(source, destination):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(versions.os, "rename", rename)
    assert versions.publish(stage(), base, 1) == os.path.join(base, "1")
    assert os.listdir(base) == ["1"]  # staging removed
    assert sorted(os.listdir(os.path.join(base, "1"))) == ["saved_model.pb", "variables"]
    # retention cannot rename the old version away either: it deletes it in place
    versions.publish(stage(), base, 2)
    assert versions.apply_retention(base, keep=1) == [1]
    assert os.listdir(base) == ["2"]
