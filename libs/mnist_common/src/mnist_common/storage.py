"""File access for local paths and tf.io.gfile URIs (gs://, s3://, ...), in one place.

Local paths use the standard library, so services that never touch a bucket do not pay for
importing TensorFlow. Anything with a scheme goes through tf.io.gfile.
"""

from __future__ import annotations

import os
import tempfile


def is_remote(path: str) -> bool:
    return "://" in str(path)


def _gfile():
    import tensorflow as tf  # imported lazily: only remote paths need it

    return tf.io.gfile


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return os.path.join(base, *parts)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def listdir(path: str) -> list[str]:
    if is_remote(path):
        return [name.rstrip("/") for name in _gfile().listdir(path)]
    return os.listdir(path)


def makedirs(path: str) -> None:
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
    if is_remote(path):
        gfile = _gfile()
        if not gfile.exists(path):
            raise FileNotFoundError(path)
        with gfile.GFile(path, "rb") as handle:
            return handle.read()
    with open(path, "rb") as handle:
        return handle.read()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write a file so that a reader sees either the old content or all of the new.

    Locally: a temporary file in the same folder, fsync, then os.replace. On object stores
    (gs://) a single object upload only becomes visible once complete, so a direct write is
    already all-or-nothing.
    """
    if is_remote(path):
        with _gfile().GFile(path, "wb") as handle:
            handle.write(data)
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- Tree operations (added for the model exporter's publishing and retention) --------------
# Kept apart from the basics above: only the exporter needs to copy and delete whole folders.


def copy_file(source: str, destination: str) -> None:
    """Copy one file, replacing the destination. On gs:// each object copy is all-or-nothing."""
    if is_remote(source) or is_remote(destination):
        _gfile().copy(source, destination, overwrite=True)
        return
    import shutil

    shutil.copyfile(source, destination)


def remove_file(path: str) -> None:
    if is_remote(path):
        _gfile().remove(path)
    else:
        os.remove(path)


def remove_tree(path: str) -> None:
    """Delete a folder and everything in it; a folder that is already gone is not an error."""
    if is_remote(path):
        gfile = _gfile()
        if gfile.exists(path):
            gfile.rmtree(path)
        return
    import shutil

    if os.path.lexists(path):
        shutil.rmtree(path)
