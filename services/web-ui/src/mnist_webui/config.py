"""Settings of the web UI, read from the environment once at start-up.

The model server's address is configuration only: nothing in a request can change where the
app connects (the tutorial's app took `addr` and `port` from the URL, an open relay).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


class ConfigError(ValueError):
    """An environment variable has a value the app cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    model_name: str = "mnist"
    serving_protocol: str = "grpc"  # grpc | rest
    serving_grpc_address: str = "localhost:8500"
    serving_rest_url: str = "http://localhost:8501"
    serving_timeout_seconds: float = 5.0
    serving_retries: int = 2
    data_dir: str = "artifacts/data/mnist"
    # Requests larger than this get 413 before anything reads them.
    max_request_bytes: int = 1024 * 1024
    # Uploads with more pixels than this are refused before decoding (decompression bombs).
    max_image_pixels: int = 4096 * 4096
    # IAP's audience for this backend (/projects/NUMBER/global/backendServices/ID); when set, every
    # request but the health checks must carry a valid IAP assertion (mnist_webui.iap).
    iap_audience: str = ""
    # Set where IAP fronts the app (the iap-ingress component): without an audience to check, every
    # request but the health checks is refused, so the app is never open behind a missing setting.
    iap_required: bool = False
    # The rollout state file (stable/canary split); empty: no labels, the server's default version.
    rollout_file: str = ""
    rollout_poll_seconds: float = 1.0
    # A second port that serves only /metrics, without the IAP check (mnist_webui.metrics_port);
    # 0: /metrics on the main port, as locally.
    metrics_port: int = 0

    def as_flask_config(self) -> dict:
        return {"MNIST_SETTINGS": self, "MAX_CONTENT_LENGTH": self.max_request_bytes}

    def to_dict(self) -> dict:
        return asdict(self)


def _number(environ, name: str, default, kind, minimum):
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def settings_from_env(environ=None) -> Settings:
    """Settings from environment variables (see services/web-ui/README.md)."""
    environ = os.environ if environ is None else environ
    protocol = environ.get("SERVING_PROTOCOL", "grpc").strip().lower()
    if protocol not in ("grpc", "rest"):
        raise ConfigError(f"SERVING_PROTOCOL={protocol!r} must be 'grpc' or 'rest'")
    grpc_port = environ.get("GRPC_PORT", "8500")
    rest_port = environ.get("REST_PORT", "8501")
    return Settings(
        model_name=environ.get("MODEL_NAME", "mnist"),
        serving_protocol=protocol,
        serving_grpc_address=environ.get("SERVING_GRPC_ADDRESS") or f"localhost:{grpc_port}",
        serving_rest_url=environ.get("SERVING_REST_URL") or f"http://localhost:{rest_port}",
        serving_timeout_seconds=_number(environ, "SERVING_TIMEOUT_SECONDS", 5.0, float, 0.001),
        serving_retries=_number(environ, "SERVING_RETRIES", 2, int, 0),
        data_dir=environ.get("DATA_DIR", "artifacts/data/mnist"),
        iap_audience=environ.get("IAP_AUDIENCE", "").strip(),
        iap_required=environ.get("IAP_REQUIRED", "").strip().lower() in ("1", "true", "yes"),
        rollout_file=environ.get("ROLLOUT_FILE", ""),
        rollout_poll_seconds=_number(environ, "ROLLOUT_POLL_SECONDS", 1.0, float, 0.05),
        metrics_port=_metrics_port(environ),
    )


def _metrics_port(environ) -> int:
    port = _number(environ, "METRICS_PORT", 0, int, 0)
    if port > 65535:
        raise ConfigError(f"METRICS_PORT={port} is not a TCP port (1-65535, or 0 for none)")
    if port and str(port) == environ.get("UI_PORT", "8080"):
        raise ConfigError(f"METRICS_PORT={port} must differ from UI_PORT")
    return port
