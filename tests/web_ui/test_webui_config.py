"""mnist_webui.config: the environment decides everything, with clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnist_webui.config import ConfigError, Settings, settings_from_env
from mnist_webui.worker import client_timeout_from_env


def test_defaults_follow_the_repository_ports():
    settings = settings_from_env({})
    assert settings == Settings()
    assert settings.serving_grpc_address == "localhost:8500"
    assert settings.serving_rest_url == "http://localhost:8501"


def test_ports_and_explicit_addresses():
    settings = settings_from_env({"GRPC_PORT": "9000", "REST_PORT": "9001", "SERVING_PROTOCOL": "REST"})
    assert settings.serving_grpc_address == "localhost:9000"
    assert settings.serving_rest_url == "http://localhost:9001"
    assert settings.serving_protocol == "rest"
    explicit = settings_from_env(
        {
            "SERVING_GRPC_ADDRESS": "serving:8500",
            "SERVING_REST_URL": "http://serving:8501",
            "SERVING_TIMEOUT_SECONDS": "0.5",
            "MODEL_NAME": "digits",
            "DATA_DIR": "gs://bucket/mnist",
        }
    )
    assert explicit.serving_grpc_address == "serving:8500"
    assert explicit.serving_timeout_seconds == 0.5
    assert (explicit.model_name, explicit.data_dir) == ("digits", "gs://bucket/mnist")


@pytest.mark.parametrize(
    "environ, name",
    [
        ({"SERVING_PROTOCOL": "soap"}, "SERVING_PROTOCOL"),
        ({"SERVING_TIMEOUT_SECONDS": "soon"}, "SERVING_TIMEOUT_SECONDS"),
        ({"SERVING_TIMEOUT_SECONDS": "0"}, "SERVING_TIMEOUT_SECONDS"),
        ({"SERVING_RETRIES": "-1"}, "SERVING_RETRIES"),
    ],
)
def test_bad_values_name_the_variable(environ, name):
    with pytest.raises(ConfigError, match=name):
        settings_from_env(environ)


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan", "7200"])
def test_a_bad_client_timeout_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("WEB_CLIENT_TIMEOUT", raw)
    with pytest.raises(ValueError, match="WEB_CLIENT_TIMEOUT"):
        client_timeout_from_env()


def test_gunicorn_refuses_a_bad_client_timeout_with_exit_code_2():
    result = subprocess.run(
        [sys.executable, "-c", "import mnist_webui.gunicorn_conf"],
        env={**os.environ, "WEB_CLIENT_TIMEOUT": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "WEB_CLIENT_TIMEOUT='soon'" in result.stderr and "Traceback" not in result.stderr
