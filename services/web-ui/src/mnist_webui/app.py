"""The application factory: settings, model server client, held-out digits, blueprints."""

from __future__ import annotations

from flask import Flask

from mnist_common.coalescing import CoalescingClient
from mnist_common.serving_client import create_client
from mnist_webui import api, health, iap, metrics_port, pages, security
from mnist_webui.config import Settings, settings_from_env
from mnist_webui.errors import register_error_handlers
from mnist_webui.extensions import KEY, WebUi
from mnist_webui.json_provider import OrjsonProvider
from mnist_webui.metrics import install as install_metrics
from mnist_webui.model_gateway import ModelGateway
from mnist_webui.rollout import RolloutView
from mnist_webui.samples import HeldOutDigits

__all__ = ["create_app"]


def create_app(config: dict | None = None) -> Flask:
    """The application factory.

    `config` overrides Flask settings; besides Flask's own keys it may hold MNIST_SETTINGS
    (a Settings, default: from the environment), MNIST_CLIENT (a ServingClient, default: one built
    from the settings), MNIST_DIGITS (a HeldOutDigits, default: the test split of DATA_DIR) and
    MNIST_IAP_KEYS (IAP's public keys, default: fetched from Google when IAP_AUDIENCE is set).
    """
    config = dict(config or {})
    settings: Settings = config.pop("MNIST_SETTINGS", None) or settings_from_env()
    client = config.pop("MNIST_CLIENT", None)
    digits = config.pop("MNIST_DIGITS", None)
    iap_keys = config.pop("MNIST_IAP_KEYS", None)

    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(settings.as_flask_config())
    app.config.update(config)

    if client is None:
        # Built here, once per process (gunicorn imports the app in each worker after forking,
        # so no gRPC channel crosses a fork); reused by every request and thread.
        client = create_client(
            settings.serving_protocol,
            settings.model_name,
            grpc_address=settings.serving_grpc_address,
            rest_url=settings.serving_rest_url,
            timeout_seconds=settings.serving_timeout_seconds,
            retries=settings.serving_retries,
        )
    # Predictions made at the same time by this process's threads share model server calls
    # (mnist_common.coalescing): under load, one call carries several digits.
    client = CoalescingClient(client)
    if digits is None:
        digits = HeldOutDigits.load(settings.data_dir)

    # Before IAP's hooks: the metrics port answers scrapes, which carry no IAP header.
    metrics_port.install(app, settings.metrics_port)
    if settings.iap_audience:
        # First of the request hooks after the metrics port's: nothing else runs for a request IAP did not let through.
        iap.install(app, iap.IapVerifier(settings.iap_audience, iap_keys or iap.IapKeys()))
    elif settings.iap_required:
        iap.install_closed(app)
    metrics = install_metrics(app)
    rollout = RolloutView(settings.rollout_file, settings.rollout_poll_seconds) if settings.rollout_file else None
    app.extensions[KEY] = WebUi(settings, ModelGateway(client, metrics, rollout), digits, metrics)

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    register_error_handlers(app)
    security.install(app)
    return app
