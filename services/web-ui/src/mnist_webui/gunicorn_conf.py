"""gunicorn settings for the web UI (`gunicorn -c python:mnist_webui.gunicorn_conf ...`).

Threads per worker: a prediction mostly waits on the model server, so threads overlap that wait
while the few CPU-bound parts stay short. One process per core sidesteps the GIL.

Environment: HOST (127.0.0.1; 0.0.0.0 listens on every interface), UI_PORT (8080), METRICS_PORT
(none: /metrics on UI_PORT), WEB_WORKERS (number of CPUs), WEB_THREADS (16), WEB_TIMEOUT (30),
WEB_CLIENT_TIMEOUT (5: seconds a client has to send a whole request),
WEB_ACCESS_LOG (0; 1 logs every request to stdout; the cluster sets 1), LOG_FORMAT (text; json
in the cluster: mnist_common.logs).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from gunicorn.glogging import Logger as GunicornLogger

from mnist_common import logs
from mnist_webui.config import ConfigError, settings_from_env
from mnist_webui.worker import client_timeout_from_env


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"error: {name}={raw!r} is not an integer") from None


# Check the app's settings here, in the master, so a bad variable stops gunicorn at once with one
# line naming it, instead of every worker failing to boot with a traceback.
try:
    settings_from_env()
    client_timeout_from_env()
    logs.log_format()
except (ConfigError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2) from None

# Loopback unless HOST says otherwise: the app has no sign-in of its own (the container sets
# HOST=0.0.0.0, behind IAP; make ui warns when HOST opens it).
host = os.environ.get("HOST") or "127.0.0.1"


def _address(port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# METRICS_PORT (the cluster sets it): a second socket that answers only /metrics, without the
# IAP check (mnist_webui.metrics_port); the Service never routes to it.
bind = [_address(_int("UI_PORT", 8080))] + ([_address(_int("METRICS_PORT", 0))] if _int("METRICS_PORT", 0) else [])
# uvicorn's event loop reads each request whole (within WEB_CLIENT_TIMEOUT) before one of the
# WEB_THREADS threads runs the app: slow clients cannot hold the threads (see mnist_webui.worker).
worker_class = "mnist_webui.worker.BufferedRequestWorker"
workers = _int("WEB_WORKERS", os.cpu_count() or 1)
threads = _int("WEB_THREADS", 16)
timeout = _int("WEB_TIMEOUT", 30)
graceful_timeout = 10
keepalive = 5
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG") == "1" else None
errorlog = "-"


class _ServiceLogFormat(GunicornLogger):
    """gunicorn's own lines and its access log in the services' one format (mnist_common.logs):
    JSON with LOG_FORMAT=json, as the cluster sets it, so Cloud Logging reads their severity."""

    def setup(self, cfg):
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(logs.formatter("web-ui"))


logger_class = _ServiceLogFormat
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
# gunicorn's control socket lives at one fixed path in $HOME, so two instances (make ui next to
# the tests, or a read-only home in a container) would trip over it; nothing here uses it.
control_socket_disable = True

# Workers share their Prometheus metrics through files in one directory so /metrics sums all
# workers. It must be in the environment before a worker first imports prometheus_client, and is
# made in when_ready (sockets bound, no worker forked yet): a start that fails to bind leaves no
# directory behind. Removed when gunicorn exits.
_metrics_dir: str | None = None


def when_ready(server):
    global _metrics_dir
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        _metrics_dir = tempfile.mkdtemp(prefix="webui-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def post_fork(server, worker):
    # Before the worker loads the app: the app's own log lines (missing data, model server
    # failures, unexpected errors) in gunicorn's format on its error stream, instead of Python's
    # bare last-resort handler.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.formatter("web-ui"))
    app_logger = logging.getLogger("mnist_webui")
    app_logger.addHandler(handler)
    app_logger.setLevel(loglevel.upper())
    app_logger.propagate = False


def child_exit(server, worker):
    # Imported here, not at the top: prometheus_client decides its storage when first imported,
    # which has to happen after PROMETHEUS_MULTIPROC_DIR is set (and is harmless by now).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir is not None:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
