"""The services log in one format: with LOG_FORMAT=json (as the cluster sets it) every line of
their own is a JSON object that Cloud Logging parses, with a severity; the web UI's access log
lines too. (TensorFlow's C++ start-up notes are not ours and stay as they are.)"""

from __future__ import annotations

import json
import os
import types

import requests

from mnist_run.ports import free_ports
from tests.support.paths import VENV_BIN
from tests.support.waiting import wait_for
from tests.web_ui.webui_servers import ManagedProcess, WebUiServer

SEVERITIES = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def json_lines(log_path) -> list[dict]:
    with open(log_path, errors="replace") as handle:
        return [json.loads(line) for line in handle if line.startswith("{")]


def test_the_stand_in_logs_json_lines_with_severity(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    (tmp_path / "models").mkdir()
    standin = ManagedProcess("tfserving-standin", str(tmp_path / "standin.log"))
    grpc_port, rest_port = free_ports(2)
    standin._spawn(
        [
            os.path.join(VENV_BIN, "tfserving-standin"),
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_base_path={tmp_path / 'models'}",
            "--file_system_poll_wait_seconds=1",
        ]
    )
    try:
        entries = wait_for(
            lambda: (
                [e for e in json_lines(standin.log_path) if "REST API" in e["message"]] and json_lines(standin.log_path)
            ),
            90,
            "the stand-in's JSON start-up lines",
            process=standin.process,
            log_tail=standin.log_tail,
        )
    finally:
        standin.stop()
    assert all(entry["severity"] in SEVERITIES and entry["service"] == "tfserving-standin" for entry in entries)
    assert {"WARNING", "INFO"} <= {entry["severity"] for entry in entries}  # "no versions" is a warning


def test_the_web_ui_logs_json_lines_and_its_access_log(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("WEB_ACCESS_LOG", "1")
    nowhere = types.SimpleNamespace(model_name="mnist", grpc_address="127.0.0.1:9", rest_url="http://127.0.0.1:9")
    webui = WebUiServer(nowhere, data_dir, str(tmp_path / "webui.log")).start()
    try:
        requests.get(f"{webui.url}/healthz", timeout=5)
        entries = wait_for(
            lambda: (
                [e for e in json_lines(webui.log_path) if "/healthz" in e["message"]] and json_lines(webui.log_path)
            ),
            30,
            "an access log line",
            process=webui.process,
            log_tail=webui.log_tail,
        )
    finally:
        webui.stop()
    assert all(entry["severity"] in SEVERITIES and entry["service"] == "web-ui" for entry in entries)
    assert any(entry["logger"] == "gunicorn.error" and "Listening at" in entry["message"] for entry in entries)
    # The access log is written by the worker's HTTP server (uvicorn's worker class).
    assert any(
        entry["logger"] in ("gunicorn.access", "uvicorn.access") and "GET /healthz" in entry["message"]
        for entry in entries
    )
    with open(webui.log_path) as handle:
        ours = [line for line in handle if "gunicorn" in line or "mnist_webui" in line]
    assert all(line.startswith("{") for line in ours), ours
