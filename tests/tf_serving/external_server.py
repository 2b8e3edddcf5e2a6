"""Which external TF Serving the contract suite checks instead of a fresh stand-in.

The same names as the web UI's: SERVING_REST_URL (REST base URL) and SERVING_GRPC_ADDRESS
(host:port). SERVING_URL and SERVING_GRPC, their names before, still work for one release.
"""

from __future__ import annotations

from collections.abc import Mapping

from mnist_common.settings import read_setting


def external_server(environ: Mapping[str, str] | None = None) -> tuple[str, str | None] | None:
    """(REST URL, gRPC host:port or None) when an external server is given, else None."""
    rest_url = read_setting("SERVING_REST_URL", "SERVING_URL", environ=environ)
    if rest_url is None:
        return None
    return rest_url, read_setting("SERVING_GRPC_ADDRESS", "SERVING_GRPC", environ=environ)
