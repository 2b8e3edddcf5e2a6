"""`make serve`, `make export` and `make tensorboard` from a fresh clone set up what they need,
and reuse what is there. The tools are stubs that log their command lines, so these take seconds."""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess
import sys

import pytest

from mnist_run.ports import free_ports
from tests.support.paths import REPO_ROOT

STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
while [ $# -gt 0 ]; do
  case "$1" in
    --model-dir) mkdir -p "$2" && echo '{{}}' > "$2/metrics.json" ;;
    --model-base-path) mkdir -p "$2/1" && touch "$2/1/saved_model.pb" ;;
  esac
  shift
done
exit 0
"""


@pytest.fixture
def stub_venv(tmp_path):
    """A venv whose python is the tests' own and whose tools only log how they were called."""
    log = tmp_path / "calls.log"
    log.touch()
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {
        "python": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n',
        # The real one: the port check and the foreground runner of make serve and tensorboard.
        "mnist-run": f'#!/bin/sh\nexec "{sys.executable}" -m mnist_run.cli "$@"\n',
    }
    for tool in ("mnist-data", "mnist-train", "mnist-export", "tfserving-standin", "tensorboard"):
        scripts[tool] = STUB.format(log=log)
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "venv" / ".setup-done").touch()
    return tmp_path, log


def free_port_settings() -> list[str]:
    # make serve and make tensorboard check their ports first: never the defaults, which a
    # running stack may hold.
    grpc, rest, board = free_ports(3)
    return [f"GRPC_PORT={grpc}", f"REST_PORT={rest}", f"TENSORBOARD_PORT={board}"]


def make(stub, *args):
    result, lines = make_logged(stub, *args)
    return result, [line.split()[0] for line in lines]


def make_logged(stub, *args):
    """make's result and the stubbed tools' command lines, in order."""
    root, log = stub
    artifacts = root / "artifacts"
    env = {k: v for k, v in os.environ.items() if k not in ("TRAIN_DIR", "MODEL_BASE_PATH", "DATA_DIR", "MAKEFLAGS")}
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"VENV={root / 'venv'}",
            f"ARTIFACTS={artifacts}",
            *free_port_settings(),
            *args,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines()
    log.write_text("")
    return result, calls


def test_serve_on_a_fresh_clone_trains_exports_then_serves(stub_venv):
    result, calls = make(stub_venv, "serve")
    assert result.returncode == 0, result.stderr
    assert [c for c in calls if c != "mnist-data"] == ["mnist-train", "mnist-export", "tfserving-standin"]
    assert "making one first" in result.stderr


def test_serve_with_a_version_serves_it_as_it_is(stub_venv):
    make(stub_venv, "serve")
    result, calls = make(stub_venv, "serve")
    assert result.returncode == 0, result.stderr
    assert calls == ["tfserving-standin"]


def test_export_on_a_fresh_clone_trains_first(stub_venv):
    result, calls = make(stub_venv, "export")
    assert result.returncode == 0, result.stderr
    assert [c for c in calls if c != "mnist-data"] == ["mnist-train", "mnist-export"]
    assert "training first" in result.stderr


def test_export_of_a_finished_run_does_not_train_again(stub_venv):
    make(stub_venv, "train")
    result, calls = make(stub_venv, "export")
    assert result.returncode == 0 and "mnist-train" not in calls and "mnist-export" in calls


def test_tensorboard_on_a_fresh_clone_starts_and_says_to_train(stub_venv):
    root, _ = stub_venv
    result, calls = make(stub_venv, "tensorboard")
    assert result.returncode == 0, result.stderr
    assert calls == ["tensorboard"]
    assert "make train" in result.stderr
    assert pathlib.Path(root / "artifacts" / "training" / "logs").is_dir()


@pytest.mark.parametrize(
    "target, promise", [("serve", "trains and exports"), ("export", "trains first"), ("tensorboard", "before training")]
)
def test_the_help_line_says_what_the_target_sets_up(target, promise):
    help_text = subprocess.run(["make", "help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60).stdout
    line = next(line for line in help_text.splitlines() if line.split()[:1] == [target])
    assert promise in line


def test_quick_model_on_a_fresh_clone_trains_briefly_and_exports_with_its_gate(stub_venv):
    root, _ = stub_venv
    result, lines = make_logged(stub_venv, "quick-model")
    assert result.returncode == 0, result.stderr
    calls = [line for line in lines if not line.startswith("mnist-data")]
    assert [line.split()[0] for line in calls] == ["mnist-train", "mnist-export"]
    assert "--epochs 2" in calls[0] and f"--model-dir {root}/artifacts/training-quick" in calls[0]
    assert "--min-accuracy 0.95" in calls[1] and f"--train-dir {root}/artifacts/training-quick" in calls[1]
    result, names = make(stub_venv, "quick-model")
    assert "already holds a version" in result.stdout and names == ["mnist-data"]


def test_quick_model_dry_run_runs_nothing(stub_venv):
    result, calls = make(stub_venv, "-n", "quick-model")
    assert result.returncode == 0, result.stderr
    assert calls == [] and "--epochs 2" in result.stdout and '--min-accuracy "0.95"' in result.stdout
