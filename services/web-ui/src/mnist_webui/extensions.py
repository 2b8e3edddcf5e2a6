"""Per-app objects shared by the blueprints (kept in app.extensions, not module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from mnist_webui.config import Settings
from mnist_webui.metrics import Metrics
from mnist_webui.model_gateway import ModelGateway
from mnist_webui.samples import HeldOutDigits

KEY = "mnist_webui"


@dataclass
class WebUi:
    settings: Settings
    model: ModelGateway
    digits: HeldOutDigits
    metrics: Metrics


def webui() -> WebUi:
    return current_app.extensions[KEY]
