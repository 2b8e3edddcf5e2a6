"""The MNIST web UI: a Flask app that sends digits to TF Serving and shows what the model thinks.

Run it with `gunicorn -c python:mnist_webui.gunicorn_conf "mnist_webui:create_app()"`
(`make ui`); see services/web-ui/README.md for its environment variables.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(config: dict | None = None):
    """The application factory; see mnist_webui.app.create_app.

    Importing this package stays free of Flask and prometheus_client on purpose: gunicorn imports
    mnist_webui.gunicorn_conf (and so this package) in its master process, and the configuration
    must set PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported.
    """
    from mnist_webui.app import create_app as factory

    return factory(config)
