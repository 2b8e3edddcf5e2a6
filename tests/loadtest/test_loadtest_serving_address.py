"""The serving user classes find the model server under the names the web UI uses for it
(SERVING_REST_URL, SERVING_GRPC_ADDRESS); TARGET (locust's --host) still overrides every class."""

from __future__ import annotations

import os
import subprocess
import sys

# In a subprocess: importing locust monkey-patches the whole process for gevent.
SHOW_HOSTS = (
    "import runpy; names = runpy.run_path('loadtest/locustfile.py'); "
    "print(names['ServingRestUser'].host); print(names['ServingGrpcUser'].host)"
)


def hosts(repo_root, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVING_")}
    result = subprocess.run(
        [sys.executable, "-c", SHOW_HOSTS],
        cwd=repo_root,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-2:]


def test_the_web_uis_names_point_the_serving_classes(repo_root):
    assert hosts(repo_root, SERVING_REST_URL="http://tfs:9001", SERVING_GRPC_ADDRESS="tfs:9000") == [
        "http://tfs:9001",
        "tfs:9000",
    ]


def test_without_them_the_local_ports(repo_root):
    assert hosts(repo_root, REST_PORT="18501", GRPC_PORT="18500") == ["http://127.0.0.1:18501", "127.0.0.1:18500"]
