"""The repository's folders the tests read."""

from __future__ import annotations

import os
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "artifacts" / "data" / "mnist"
KUSTOMIZE = REPO_ROOT / "kustomize"
SERVING_CONFIG_DIR = REPO_ROOT / "services" / "tf-serving" / "config"
# The console scripts and kubectl of the venv the tests run in.
VENV_BIN = os.path.dirname(sys.executable)
