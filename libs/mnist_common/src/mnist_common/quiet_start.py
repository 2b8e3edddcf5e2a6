"""A quiet start: TensorFlow's start-up lines and absl's chatter off unless asked for.

Every program that loads TensorFlow calls `quiet_tensorflow()` first. Unless the environment has
VERBOSE=1 or a LOG_LEVEL (then everything is shown, as TensorFlow prints it):

- TF_CPP_MIN_LOG_LEVEL defaults to 2: TensorFlow's C++ INFO and WARNING lines while running
  (tf.data's "Local rendezvous is aborting", ...) are off, its errors stay on;
- TensorFlow is imported and its devices discovered with the process's stderr (file descriptor
  2, which the C++ side writes to) caught in a temporary file, and then every caught line is
  written back except TensorFlow's start-up lines: oneDNN, "Could not find cuda drivers", the CPU
  instruction flags, absl's "All log messages before absl::InitializeLog()" and, on a machine
  without a GPU, the E-level "failed call to cuInit". Since TensorFlow 2.19 these are logged by
  absl before its log is initialised, where TF_CPP_MIN_LOG_LEVEL does not reach them
  (tensorflow/tensorflow#100442), so only catching them works;
- Python's `absl` logger (Keras' checkpoint sharding logs "Sharding callback duration" at INFO
  after every epoch) is set to WARNING.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Mapping

# The start-up lines, and nothing a user needs: what is caught and matches none is written back.
STARTUP_LINES = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    # absl's format (I0000 00:00:1796687287.639102    1859 port.cc:153] ...) at INFO or WARNING
    re.compile(r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "),
    # TensorFlow's own format (2026-12-07 23:49:21.496: I tensorflow/...cc:31] ...)
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] "),
    # no GPU here: an error by name only
    re.compile(r"^E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"),
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"),
)


def verbose(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get("VERBOSE", "").strip() not in ("", "0") or bool(environ.get("LOG_LEVEL", "").strip())


def startup_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in STARTUP_LINES)


def without_startup_noise(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not startup_noise(line.rstrip("\n")))


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up lines (see the module's docstring); idempotent."""
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.WARNING)
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as caught:
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery: where cuInit fails without a GPU
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = without_startup_noise(caught.read().decode("utf-8", "replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
    logging.getLogger("absl").setLevel(logging.WARNING)
