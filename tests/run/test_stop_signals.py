"""Ctrl-C and SIGTERM end `make run`, `make serve` and `make ui` with exit 0 and no line that looks
like an error; and a run is quiet: no TensorFlow start-up lines, no absl lines, one "waiting for
the model server" line while the model server starts.

Each make runs in a pseudo-terminal of its own (tests.support.terminal), as a person runs it:
Ctrl-C is the byte 0x03 typed into it, which the kernel turns into SIGINT for the terminal's
foreground process group. Each signal is sent only after a handshake (a line the server prints
when it is up), never after a sleep.
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from mnist_common.quiet_start import startup_noise
from mnist_run.ports import free_ports, is_listening
from tests.support.make import VENV
from tests.support.models import export_version, untrained_model
from tests.support.paths import DATA_DIR, REPO_ROOT
from tests.support.terminal import Terminal

pytestmark = pytest.mark.slow

# What must not appear after a normal start and stop.
LOOKS_LIKE_AN_ERROR = re.compile(
    r"error|traceback|exception|make: \*\*\*|terminated|bad file descriptor|was sent SIG|rc=-|warning",
    re.IGNORECASE,
)
# Allowed although they contain such a word: log lines' logger names (gunicorn.error, uvicorn.error).
LOGGER_NAMES = re.compile(r"\b(gunicorn|uvicorn)\.error\b")


def alarming_lines(output: str) -> list[str]:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in output.splitlines()]
    return [
        line
        for line in lines
        if LOOKS_LIKE_AN_ERROR.search(LOGGER_NAMES.sub("", line)) or startup_noise(line.split("| ", 1)[-1])
    ]


def environment(tmp_path, **settings) -> tuple[dict[str, str], list[str]]:
    grpc_port, rest_port, ui_port = free_ports(3)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    for name in ("VERBOSE", "LOG_LEVEL", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(name, None)  # the defaults a user has
    args = [
        f"VENV={VENV}",
        f"ARTIFACTS={tmp_path / 'artifacts'}",
        f"MODEL_BASE_PATH={tmp_path / 'models' / 'mnist'}",
        f"DATA_DIR={DATA_DIR}",
        f"GRPC_PORT={grpc_port}",
        f"REST_PORT={rest_port}",
        f"UI_PORT={ui_port}",
        *(f"{name}={value}" for name, value in settings.items()),
    ]
    return env, args


@pytest.fixture
def published(tmp_path):
    export_version(untrained_model(), tmp_path / "models" / "mnist", 1)
    return tmp_path


_started: list[Terminal] = []


@pytest.fixture(autouse=True)
def nothing_outlives_a_test():
    yield
    while _started:
        with _started.pop():
            pass  # kills what a failed test left running


def start(target: str, tmp_path, **settings) -> tuple[Terminal, dict[str, int]]:
    env, args = environment(tmp_path, **settings)
    ports = {arg.split("=")[0]: int(arg.split("=")[1]) for arg in args if arg.split("=")[0].endswith("_PORT")}
    terminal = Terminal(["make", "--no-print-directory", target, *args], env, str(REPO_ROOT))
    _started.append(terminal)
    return terminal, ports


def test_ctrl_c_ends_make_serve_with_exit_0_and_no_error(published):
    terminal, ports = start("serve", published)
    terminal.wait_for(r"Exporting HTTP/REST API at", 240)
    terminal.ctrl_c()
    assert terminal.finish(60) == 0, terminal.output
    assert alarming_lines(terminal.output) == [], terminal.output
    assert not is_listening(ports["REST_PORT"])


def test_sigterm_to_make_itself_stops_the_server_without_an_error_line(published):
    terminal, ports = start("serve", published)
    terminal.wait_for(r"Exporting HTTP/REST API at", 240)
    os.kill(terminal.pid, signal.SIGTERM)
    # GNU make forwards SIGTERM to its recipe, waits for it and then ends by the same signal
    # whatever the recipe returned (its fatal_error_signal): -15 is make's, not the server's.
    assert terminal.finish(60) in (0, -signal.SIGTERM), terminal.output
    assert "Shutting down" in terminal.output
    assert alarming_lines(terminal.output) == [], terminal.output
    assert not is_listening(ports["REST_PORT"]) and not is_listening(ports["GRPC_PORT"])


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_make_ui_ends_with_exit_0_and_no_error(tmp_path, stop):
    terminal, ports = start("ui", tmp_path)
    terminal.wait_for(r"Started server process(.|\n)*Started server process", 120)  # both workers serve
    if stop == "ctrl-c":
        terminal.ctrl_c()
    else:
        os.killpg(terminal.foreground_group(), signal.SIGTERM)
    assert terminal.finish(60) == 0, terminal.output
    assert alarming_lines(terminal.output) == [], terminal.output
    assert not is_listening(ports["UI_PORT"])


def test_make_run_is_quiet_and_ctrl_c_ends_it_with_exit_0(tmp_path):
    # A fresh artifacts folder: make run trains (a tiny run), exports, serves, and is stopped.
    terminal, ports = start("run", tmp_path, EPOCHS=1, TRAIN_LIMIT=256, MIN_ACCURACY=0, TRAIN_DIR=tmp_path / "training")
    terminal.wait_for(r"ready: open http://localhost:\d+/", 420)
    terminal.ctrl_c()
    assert terminal.finish(60) == 0, terminal.output
    assert alarming_lines(terminal.output) == [], terminal.output
    assert "absl" not in terminal.output  # "Sharding callback duration" after each epoch
    waits = re.findall(r"waiting for the model server", terminal.output)
    assert len(waits) <= 1, terminal.output  # none when the model server was up first
    assert re.search(r"serving\.1 stopped \(rc=0\)", terminal.output), terminal.output
    assert not is_listening(ports["UI_PORT"])
