"""`make ui` with your own model server: one variable per protocol, the address it prints is the
one the web UI really gets, and it advises starting the local stack only when none is given."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from mnist_webui.config import settings_from_env
from tests.support.paths import REPO_ROOT


@pytest.fixture
def stub_venv(tmp_path):
    """mnist-run passes (and runs what `foreground` is given); gunicorn prints the environment the web UI would start with."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {
        "python": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n',
        # the port check passes; `foreground -- COMMAND` runs the command
        "mnist-run": '#!/bin/sh\nif [ "$1" = foreground ]; then shift 2; exec "$@"; fi\nexit 0\n',
        "gunicorn": "#!/bin/sh\nenv | grep -E '^(SERVING_|GRPC_PORT|REST_PORT|MODEL_NAME)' | sed 's/^/env: /'\n",
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "venv" / ".setup-done").touch()
    return tmp_path / "venv"


def make_ui(venv, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVING_") and k != "MAKEFLAGS"}
    done = subprocess.run(
        ["make", "--no-print-directory", f"VENV={venv}", "ui", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    announced = next(line for line in done.stdout.splitlines() if line.startswith("ui: "))
    child_env = dict(
        line[len("env: ") :].split("=", 1) for line in done.stdout.splitlines() if line.startswith("env: ")
    )
    return announced, settings_from_env(child_env)


def test_a_grpc_address_is_used_and_printed_without_advising_make_run(stub_venv):
    announced, settings = make_ui(stub_venv, "SERVING_GRPC_ADDRESS=tf-serving.example.com:9000")
    assert settings.serving_protocol == "grpc"
    assert settings.serving_grpc_address == "tf-serving.example.com:9000"
    assert "at tf-serving.example.com:9000" in announced
    assert "make run" not in announced and "localhost" not in announced.split("->", 1)[1]


def test_a_rest_url_is_used_and_printed(stub_venv):
    announced, settings = make_ui(stub_venv, "SERVING_PROTOCOL=rest", "SERVING_REST_URL=http://tfs.example.com:9001")
    assert settings.serving_rest_url == "http://tfs.example.com:9001"
    assert "over rest at http://tfs.example.com:9001" in announced and "make run" not in announced


def test_without_an_address_the_local_server_is_used_and_named(stub_venv):
    announced, settings = make_ui(stub_venv, "GRPC_PORT=8600")
    assert settings.serving_grpc_address == "localhost:8600"
    assert "at localhost:8600" in announced and "make serve" in announced
