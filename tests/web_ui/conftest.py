"""Fixtures of the web UI tests: an app with a fake model server, digits drawn with Pillow."""

from __future__ import annotations

import pytest

from mnist_webui import create_app
from mnist_webui.config import Settings
from mnist_webui.samples import HeldOutDigits
from tests.support.chromium import ChromiumMissing, find_chromium
from tests.support.models import export_version, fit_tiny_model
from tests.web_ui.drawing import draw_seven, encode
from tests.web_ui.webui_fakes import FakeServingClient


@pytest.fixture
def fake_client() -> FakeServingClient:
    return FakeServingClient()


@pytest.fixture(scope="session")
def held_out(data_dir) -> HeldOutDigits:
    digits = HeldOutDigits.load(data_dir)
    assert len(digits) > 0, digits.error
    return digits


@pytest.fixture
def app(fake_client, held_out):
    return create_app(
        {
            "MNIST_SETTINGS": Settings(),
            "MNIST_CLIENT": fake_client,
            "MNIST_DIGITS": held_out,
            "TESTING": True,
        }
    )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def seven_png() -> bytes:
    return encode(draw_seven())


# ---------------------------------------------------------------------------- real servers ----


@pytest.fixture(scope="session")
def model_base_path(tmp_path_factory, data_dir) -> str:
    """A TF Serving base path holding version 1 of a briefly trained model."""
    # Two epochs of small batches: after one epoch of 32 steps the batch-norm statistics still
    # lag the weights and held-out accuracy can be near chance.
    base = tmp_path_factory.mktemp("models") / "mnist"
    base.mkdir()
    export_version(fit_tiny_model(data_dir, digits=2000, epochs=2, seed=5), base, 1)
    return str(base)


@pytest.fixture(scope="session")
def standin(model_base_path, tmp_path_factory):
    """The stand-in model server, up for the whole session (tests must not stop it)."""
    from tests.web_ui.webui_servers import StandIn

    server = StandIn(model_base_path, str(tmp_path_factory.mktemp("logs") / "standin.log"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/support/chromium.py finds it; never a downloaded one)."""
    try:
        executable = find_chromium()
    except ChromiumMissing as missing:
        pytest.fail(str(missing))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()
