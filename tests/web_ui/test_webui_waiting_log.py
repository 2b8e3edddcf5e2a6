"""While the model server starts (make run starts it beside the web UI), the web UI says
"waiting for the model server" once at INFO; once the server has answered, a failure is a
WARNING each time, as before."""

from __future__ import annotations

import logging

import pytest

from mnist_common import serving_client as sc
from mnist_webui import model_gateway
from mnist_webui.metrics import Metrics
from mnist_webui.model_gateway import ModelGateway
from tests.web_ui.webui_fakes import FakeServingClient


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the workers' shared folder
    monkeypatch.setattr(model_gateway, "_waited_here", False)
    return ModelGateway(FakeServingClient(), Metrics())


def gateway_lines(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "mnist_webui.model_gateway"]


def call(gateway):
    try:
        gateway.status()
    except Exception:  # the API error the visitor gets
        pass


def test_a_starting_model_server_is_one_info_line_then_warnings_after_it_answered(gateway, caplog):
    caplog.set_level(logging.DEBUG, logger="mnist_webui")
    gateway.client.failure = sc.ModelServerUnavailable("model server localhost:1 is unavailable: refused")
    for _ in range(5):
        call(gateway)
    gateway.client.failure = sc.NotFound("no version of mnist is available yet")
    call(gateway)
    lines = gateway_lines(caplog)
    assert [level for level, _ in lines if level != "DEBUG"] == ["INFO"]
    assert lines[0][1].startswith("waiting for the model server")

    caplog.clear()
    gateway.client.failure = None
    call(gateway)  # the first answer
    gateway.client.failure = sc.ModelServerUnavailable("model server localhost:1 is unavailable: refused")
    call(gateway)
    call(gateway)
    assert [level for level, _ in gateway_lines(caplog)] == ["WARNING", "WARNING"]


def test_a_refused_input_before_the_first_answer_is_still_a_warning(gateway, caplog):
    caplog.set_level(logging.INFO, logger="mnist_webui")
    gateway.client.failure = sc.ServingError("the model server failed: internal")
    call(gateway)
    assert [level for level, _ in gateway_lines(caplog)] == ["WARNING"]


def test_the_workers_of_one_server_say_it_once_between_them(gateway, tmp_path):
    # Two gunicorn workers share PROMETHEUS_MULTIPROC_DIR: the marker file lets only one say it.
    assert model_gateway.first_wait_in_this_server() is True
    model_gateway._waited_here = False  # another process
    assert model_gateway.first_wait_in_this_server() is False
