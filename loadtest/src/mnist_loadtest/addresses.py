"""The gRPC address a locust --host names: locust hands every user class a URL-like host."""

from __future__ import annotations

from urllib.parse import urlsplit


def grpc_address(host: str) -> str:
    """host:port for a gRPC channel, from host:port, grpc://host:port or http://host:port."""
    if "://" in host:
        parts = urlsplit(host)
        if not parts.hostname or not parts.port:
            raise ValueError(f"gRPC host {host!r} needs a host and a port")
        return f"{parts.hostname}:{parts.port}"
    return host
