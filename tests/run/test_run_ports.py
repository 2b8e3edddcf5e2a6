"""The port pre-flight of make run: a busy port is a message naming it and its variable."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_run import ports
from mnist_run.ports import check_ports, free_port, free_ports, is_listening


def check(*assignments):
    return subprocess.run(
        [sys.executable, "-m", "mnist_run.cli", "check-ports", *assignments], capture_output=True, text=True, timeout=60
    )


def test_busy_port_names_port_and_variable():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        free = free_port()
        result = check(f"GRPC_PORT={free}", f"UI_PORT={busy}")
    assert result.returncode == 2
    assert f"port {busy} (UI_PORT) is in use" in result.stderr
    assert "`make run UI_PORT=" in result.stderr
    assert "GRPC_PORT" not in result.stderr


def test_free_ports_pass():
    ports = [free_port() for _ in range(3)]
    result = check(
        *(f"{name}={port}" for name, port in zip(("GRPC_PORT", "REST_PORT", "UI_PORT"), ports, strict=False))
    )
    assert result.returncode == 0, result.stderr


def test_same_port_twice_and_nonsense():
    port = free_port()
    problems = check_ports({"GRPC_PORT": port, "REST_PORT": port, "UI_PORT": 70000})
    assert [p.variable for p in problems] == ["REST_PORT", "UI_PORT"]
    assert "REST_PORT and GRPC_PORT are both" in problems[0].message
    assert "UI_PORT=70000 is not a TCP port" in problems[1].message
    result = check("UI_PORT=http")
    assert result.returncode == 2 and "UI_PORT='http' is not a port number" in result.stderr


def test_make_run_stops_before_any_work_when_a_port_is_taken(repo_root, tmp_path):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = subprocess.run(
            [
                "make",
                "-s",
                "run",
                f"ARTIFACTS={tmp_path}",
                f"GRPC_PORT={busy}",
                f"REST_PORT={free_port()}",
                f"UI_PORT={free_port()}",
            ],
            cwd=repo_root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert (
        f"port {busy} (GRPC_PORT) is in use (by a `make run` or `make serve` already up?): stop what holds it, or run `make run GRPC_PORT="
        in result.stderr
    )
    assert list(tmp_path.iterdir()) == []  # no data, training or model was touched


def test_loadtest_warns_when_nothing_listens():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        listening = holder.getsockname()[1]
        silent = free_port()
        assert is_listening(listening) and not is_listening(silent)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mnist_run.cli",
                "warn-not-listening",
                f"UI_PORT={listening}",
                f"GRPC_PORT={silent}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0
    assert f"nothing listens on 127.0.0.1:{silent} (GRPC_PORT)" in result.stderr
    assert "UI_PORT" not in result.stderr


def test_free_ports_are_below_the_ephemeral_range_distinct_and_bindable():
    low = int(Path(ports._EPHEMERAL_RANGE_FILE).read_text(encoding="ascii").split()[0])
    chosen = ports.free_ports(30)
    assert len(set(chosen)) == 30
    assert all(1024 <= port < low for port in chosen)
    with socket.socket() as server:
        server.bind(("127.0.0.1", chosen[0]))


def test_a_port_in_use_is_never_chosen(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy_port = busy.getsockname()[1]
        monkeypatch.setattr(ports, "_ports_below_ephemeral", lambda: range(busy_port, busy_port + 1))
        monkeypatch.setattr(ports, "_handed_out", set())
        with pytest.raises(RuntimeError, match="no free port"):
            ports.free_port()


@pytest.mark.parametrize(
    ("target", "variable"),
    [
        ("serve", "REST_PORT"),
        ("serve", "GRPC_PORT"),
        ("ui", "UI_PORT"),
        ("serve-docker", "GRPC_PORT"),
        ("tensorboard", "TENSORBOARD_PORT"),
    ],
)
def test_every_listening_target_checks_its_ports_before_anything_else(repo_root, tmp_path, target, variable):
    """As make run does: a taken port stops the target at once, naming the variable, before a
    model is made or TensorFlow loads (make serve with no version would train one first)."""
    ports = dict(zip(("GRPC_PORT", "REST_PORT", "UI_PORT", "TENSORBOARD_PORT"), free_ports(4), strict=True))
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        ports[variable] = busy = holder.getsockname()[1]
        result = subprocess.run(
            [
                "make",
                "-s",
                target,
                f"ARTIFACTS={tmp_path / 'artifacts'}",
                f"MODEL_BASE_PATH={tmp_path / 'models'}",
                f"TRAIN_DIR={tmp_path / 'training'}",
                *(f"{name}={port}" for name, port in ports.items()),
            ],
            cwd=repo_root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {busy} ({variable}) is in use" in result.stderr
    assert f"`make {target} {variable}=" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no model, no training, no state was touched
