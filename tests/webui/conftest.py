"""Fixtures of the web UI tests: an app with a fake model server, digits drawn with Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from webui_fakes import FakeServingClient  # pytest puts this folder on sys.path

from mnist_webui import create_app
from mnist_webui.config import Settings
from mnist_webui.samples import HeldOutDigits


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


def draw_seven(size=(300, 200), box=(40, 30, 160, 190), width=14, ink=0, paper=255) -> Image.Image:
    """A '7' drawn with Pillow inside `box` (left, top, right, bottom) of a grey picture."""
    image = Image.new("L", size, paper)
    left, top, right, bottom = box
    pen = ImageDraw.Draw(image)
    pen.line([(left, top), (right, top), (left + (right - left) // 3, bottom)], fill=ink, width=width)
    return image


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def seven_png() -> bytes:
    return encode(draw_seven())


# ---------------------------------------------------------------------------- real servers ----


def _fit_briefly(data_dir: str):
    """A model trained briefly on 2000 digits: seconds, and its predictions mean something.

    Two epochs of small batches: after one epoch of 32 steps the batch-norm statistics still lag
    the weights and held-out accuracy can be near chance.
    """
    import keras

    from mnist_common.dataset import load_split
    from mnist_trainer.model import build_model

    keras.utils.set_random_seed(5)
    train = load_split(data_dir, "train", limit=2000)
    model = build_model()
    model.fit(train.as_float(), train.labels, epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def model_base_path(tmp_path_factory, data_dir) -> str:
    """A TF Serving base path holding version 1 of a briefly trained model."""
    from mnist_exporter.saved_model import export_saved_model

    base = tmp_path_factory.mktemp("models") / "mnist"
    base.mkdir()
    export_saved_model(_fit_briefly(data_dir), str(base / "1"))
    return str(base)


@pytest.fixture(scope="session")
def standin(model_base_path, tmp_path_factory):
    """The stand-in model server, up for the whole session (tests must not stop it)."""
    from webui_servers import StandIn

    server = StandIn(model_base_path, str(tmp_path_factory.mktemp("logs") / "standin.log"))
    try:
        yield server.start()
    finally:
        server.stop()
