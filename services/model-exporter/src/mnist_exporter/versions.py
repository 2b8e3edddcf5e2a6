"""The model base path TF Serving polls: version folders, staging, publishing and retention.

Layout:  <base>/<N>/            a published version (N an integer; TF Serving loads the largest)
         <base>/.staging-<id>/  an export being built and validated (local base paths only)
         <base>/.deleting-<id>/ an old version being removed by retention (local only)
TF Serving's FileSystemStoragePathSource, and our local stand-in, only consider children whose
names parse as integers, so the dot-folders are invisible to them.

Local file system: the export is staged in <base>/.staging-<id>/ (same file system as the
version folder), its files are fsync'ed, then one os.rename makes <base>/<N>/ appear complete.
A reader polling the base path sees either no folder N or the whole version, and a process
killed before the rename leaves only a dot-folder, removed by the next successful run.

gs:// (and other object stores): there are no folders and no atomic rename of a prefix; a
"folder" <base>/<N>/ exists as soon as any object under it does. The export is therefore staged
and validated in a local temporary folder and uploaded object by object, with saved_model.pb
uploaded LAST. Each object upload is atomic on GCS and listings are strongly consistent, so:
  - before saved_model.pb exists, <base>/<N>/ is not a SavedModel: TF Serving's loader rejects
    it ("SavedModel not found") without reading any variables and retries the load later
    (--max_num_load_retries, default 5, every --load_retry_interval_micros, default 60 s),
    while the previous version keeps serving;
  - once saved_model.pb exists, every other file of the version already exists in full.
So TF Serving can never load a half-written version. An upload interrupted before
saved_model.pb leaves a folder without it; such folders are never counted as published, the
next successful run removes them (remote only), and version numbers skip them so none is reused.
Retention on gs:// deletes saved_model.pb first for the same reason.

One exporter at a time per base path (the Kubernetes Job runs one pod): after a successful
publish, stale dot-folders and (remote) incomplete versions are removed without asking whose
they are. A refused export removes nothing, so it leaves the base path exactly as it was.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import uuid

from mnist_common import storage

# What a version is, and which are published, is the pipeline's contract (readers use it too).
from mnist_common.pipeline import (
    SAVED_MODEL_FILE,
    all_version_numbers,
    is_complete,
    is_version_name,
    published_versions,
    version_path,
)
from mnist_exporter.errors import PublishConflict

log = logging.getLogger(__name__)

__all__ = [
    "SAVED_MODEL_FILE",
    "all_version_numbers",
    "is_complete",
    "is_version_name",
    "published_versions",
    "version_path",
    "next_version",
    "clean_stale",
    "new_staging_dir",
    "discard_staging_dir",
    "publish",
    "publish_by_rename",
    "publish_by_copy",
    "upload_order",
    "retire",
    "apply_retention",
]

STAGING_PREFIX = ".staging-"
DELETING_PREFIX = ".deleting-"


def next_version(base: str) -> int:
    """One more than any integer folder ever seen, so a number is never reused or overwritten."""
    numbers = all_version_numbers(base)
    return numbers[-1] + 1 if numbers else 1


def clean_stale(base: str) -> list[str]:
    """Remove what an interrupted run left behind; returns the removed names."""
    if not storage.isdir(base):
        return []
    removed = []
    for name in storage.listdir(base):
        if name.startswith((STAGING_PREFIX, DELETING_PREFIX)):
            storage.remove_tree(storage.join(base, name))
            removed.append(name)
        elif storage.is_remote(base) and is_version_name(name) and not is_complete(base, int(name)):
            storage.remove_tree(storage.join(base, name))
            removed.append(name)
        elif is_version_name(name) and not is_complete(base, int(name)):
            log.warning(
                "%s has no %s: not a SavedModel, left alone",
                storage.join(base, name),
                SAVED_MODEL_FILE,
            )
    return removed


def new_staging_dir(base: str) -> str:
    """A path (not yet created) to export into; publish() makes it version N."""
    if storage.is_remote(base):
        return os.path.join(tempfile.mkdtemp(prefix="mnist-export-"), "saved_model")
    storage.makedirs(base)
    return os.path.join(base, STAGING_PREFIX + uuid.uuid4().hex)


def discard_staging_dir(staging: str, base: str) -> None:
    storage.remove_tree(staging)
    if storage.is_remote(base):  # also drop the local temporary parent folder
        parent = os.path.dirname(staging)
        if os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)


def _local_files(folder: str) -> list[str]:
    """Paths relative to folder of every file in it, sorted for a stable order."""
    files = []
    for root, _, names in os.walk(folder):
        files.extend(os.path.relpath(os.path.join(root, name), folder) for name in names)
    return sorted(files)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: str) -> None:
    """Flush staged files and folders to disk so the rename never publishes empty files."""
    for root, _, names in os.walk(folder):
        for name in names:
            _fsync(os.path.join(root, name))
        _fsync(root)


def publish_by_rename(staging: str, base: str, version: int) -> str:
    target = version_path(base, version)
    if os.path.lexists(target):
        raise PublishConflict(f"{target} already exists; another exporter published it")
    _fsync_tree(staging)
    try:
        os.rename(staging, target)  # atomic on one file system; fails onto a non-empty folder
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise PublishConflict(f"cannot publish {target}: {error}") from None
        # Some mounts cannot rename folders (e.g. Cloud Storage FUSE on a bucket without
        # hierarchical namespace): fall back to the object-store scheme, saved_model.pb last.
        log.warning("cannot rename %s to %s (%s); copying with saved_model.pb last instead", staging, target, error)
        publish_by_copy(staging, base, version)
        storage.remove_tree(staging)
        return target
    _fsync(base)  # make the rename itself durable
    return target


def upload_order(staging: str) -> list[str]:
    """Every staged file, saved_model.pb last (see the module doc for why)."""
    files = _local_files(staging)
    return [name for name in files if name != SAVED_MODEL_FILE] + [SAVED_MODEL_FILE]


def publish_by_copy(staging: str, base: str, version: int) -> str:
    target = version_path(base, version)
    if storage.exists(target):
        raise PublishConflict(f"{target} already exists; another exporter published it")
    if not os.path.exists(os.path.join(staging, SAVED_MODEL_FILE)):
        raise FileNotFoundError(os.path.join(staging, SAVED_MODEL_FILE))
    for relative in upload_order(staging):
        parts = relative.split(os.sep)
        storage.makedirs(storage.join(target, *parts[:-1]))
        destination = storage.join(target, *parts)
        storage.copy_file(os.path.join(staging, relative), destination)
    return target


def publish(staging: str, base: str, version: int) -> str:
    """Make the staged export visible as <base>/<version> in one observable step."""
    if storage.is_remote(base):
        target = publish_by_copy(staging, base, version)
        discard_staging_dir(staging, base)
        return target
    return publish_by_rename(staging, base, version)


def retire(base: str, version: int) -> None:
    """Delete one version so no reader ever sees it half-deleted (as a loadable SavedModel)."""
    path = version_path(base, version)
    if not storage.is_remote(base):
        doomed = storage.join(base, f"{DELETING_PREFIX}{version}-{uuid.uuid4().hex}")
        try:
            os.rename(path, doomed)  # the version disappears in one step ...
        except OSError as error:  # a mount that cannot rename folders: as on object stores
            log.warning("cannot rename %s away (%s); deleting saved_model.pb first", path, error)
        else:
            storage.remove_tree(doomed)  # ... and its files go afterwards
            return
    storage.remove_file(storage.join(path, SAVED_MODEL_FILE))  # no longer a loadable version
    storage.remove_tree(path)


def apply_retention(base: str, keep: int, protect: tuple[int, ...] = ()) -> list[int]:
    """Keep the newest `keep` published versions and every `protect`ed one (the versions a rollout
    serves or may roll back to); returns the versions deleted."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    doomed = [version for version in published_versions(base)[:-keep] if version not in protect]
    for version in doomed:
        retire(base, version)
    return doomed
