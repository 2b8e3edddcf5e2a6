"""The local stack has no sign-in: make ui, make serve and make run listen on loopback unless HOST
opens them, and then they say so."""

from __future__ import annotations

import os
import pathlib
import runpy
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from mnist_run.ports import free_port

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = os.path.dirname(sys.executable)


def gunicorn_bind(monkeypatch, host: str | None, metrics_port: str | None = None) -> list[str]:
    if host is None:
        monkeypatch.delenv("HOST", raising=False)
    else:
        monkeypatch.setenv("HOST", host)
    monkeypatch.setenv("UI_PORT", "8123")
    if metrics_port is None:
        monkeypatch.delenv("METRICS_PORT", raising=False)
    else:
        monkeypatch.setenv("METRICS_PORT", metrics_port)
    return runpy.run_module("mnist_webui.gunicorn_conf")["bind"]


def test_gunicorn_binds_loopback_unless_host_says_otherwise(monkeypatch):
    assert gunicorn_bind(monkeypatch, None) == ["127.0.0.1:8123"]
    assert gunicorn_bind(monkeypatch, "0.0.0.0") == ["0.0.0.0:8123"]
    assert gunicorn_bind(monkeypatch, "::1") == ["[::1]:8123"]
    # The metrics port (the cluster's) on the same host.
    assert gunicorn_bind(monkeypatch, "0.0.0.0", "9090") == ["0.0.0.0:8123", "0.0.0.0:9090"]


def make_dry_run(target: str, **variables: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *(f"{k}={v}" for k, v in variables.items())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_serve_binds_the_stand_in_to_loopback_by_default():
    assert "tfserving-standin --host=127.0.0.1 " in make_dry_run("serve")
    assert "tfserving-standin --host=0.0.0.0 " in make_dry_run("serve", HOST="0.0.0.0")


def listening_addresses(pid: int) -> set[str]:
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.ip for p in tree for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


@pytest.mark.slow
@pytest.mark.parametrize("host, expected, warned", [(None, "127.0.0.1", False), ("0.0.0.0", "0.0.0.0", True)])
def test_make_ui_listens_where_host_says_and_warns_when_open(tmp_path, data_dir, host, expected, warned):
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "UI_PORT": str(port),
        "DATA_DIR": data_dir,
        "WEB_WORKERS": "1",
        "SERVING_GRPC_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    env.pop("HOST", None)
    if host is not None:
        env["HOST"] = host
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            ["make", "-s", "ui"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, stderr_path.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.2)
        assert listening_addresses(process.pid) == {expected}
        assert ("warning: HOST=" in stderr_path.read_text()) is warned
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
