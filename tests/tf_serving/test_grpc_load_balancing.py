"""Per-request gRPC load balancing: the web UI's client spreads predicts over every address its
target resolves to, as it must over a headless Service's pods. Two stand-ins listen on the same
port of 127.0.0.1 and 127.0.0.2; one `ipv4:` target names both, as DNS names a headless Service's
pods. Each stand-in's share is read from its own Prometheus request counter. Then a rollout: one
replica stopped with SIGTERM under load, and no predict may fail."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from mnist_common.serving_client import create_client
from tests.resilience import figures
from tests.support.paths import SERVING_CONFIG_DIR as CONFIG_DIR
from tests.tf_serving.serving_harness import MODEL_NAME, ServerUnderTest, free_port, publish, wait_available

pytestmark = pytest.mark.slow

HOSTS = ("127.0.0.1", "127.0.0.2")
PREDICTS = 60
MIN_SHARE = 0.30


def _port_free_on_every_host() -> int:
    for _ in range(20):
        port = free_port()
        with contextlib.ExitStack() as stack:
            try:
                for host in HOSTS:
                    sock = stack.enter_context(socket.socket())
                    sock.bind((host, port))
            except OSError:
                continue
            return port
    pytest.fail(f"no port free on all of {HOSTS}")


def _start(host: str, grpc_port: int, base_path, log_path) -> ServerUnderTest:
    rest_port = free_port()
    command = [
        sys.executable,
        "-m",
        "tfserving_standin.cli",
        f"--host={host}",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_name={MODEL_NAME}",
        f"--model_base_path={base_path}",
        "--enable_batching",
        f"--batching_parameters_file={CONFIG_DIR / 'batching_parameters.txt'}",
        f"--monitoring_config_file={CONFIG_DIR / 'monitoring.config'}",
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
    ]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        )
    return ServerUnderTest(f"http://{host}:{rest_port}", f"{host}:{grpc_port}", base_path, True, process, log_path)


def _grpc_predicts(server: ServerUnderTest) -> float:
    text = requests.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tfserving_requests_total{") and 'api="predict"' in line and 'entrypoint="GRPC"' in line
    )


@pytest.fixture(scope="module")
def two_standins(tmp_path_factory, exported_version):
    root = tmp_path_factory.mktemp("balanced")
    base_path = root / MODEL_NAME
    base_path.mkdir()
    publish(base_path, 1, exported_version)
    port = _port_free_on_every_host()
    servers = [_start(host, port, base_path, root / f"standin-{host}.log") for host in HOSTS]
    try:
        for server in servers:
            wait_available(server)
        yield port, servers
    finally:
        for server in servers:
            server.stop()


def test_each_replica_gets_a_fair_share_of_client_predicts(two_standins):
    port, servers = two_standins
    target = "ipv4:" + ",".join(f"{host}:{port}" for host in HOSTS)
    images = np.zeros((1, 28, 28), np.float32)
    with create_client("grpc", model_name=MODEL_NAME, grpc_address=target) as client:
        for _ in range(PREDICTS):
            client.predict(images)
    counts = [_grpc_predicts(server) for server in servers]
    assert sum(counts) == PREDICTS
    shares = [count / PREDICTS for count in counts]
    assert min(shares) >= MIN_SHARE, f"predicts per replica {counts}: one client pinned to one server"


def test_a_replica_stopped_under_load_loses_no_predicts(tmp_path, exported_version):
    """A rollout's SIGTERM to one replica while the client keeps predicting: zero failed calls."""
    base_path = tmp_path / MODEL_NAME
    base_path.mkdir()
    publish(base_path, 1, exported_version)
    port = _port_free_on_every_host()
    servers = [_start(host, port, base_path, tmp_path / f"standin-{host}.log") for host in HOSTS]
    target = "ipv4:" + ",".join(f"{host}:{port}" for host in HOSTS)
    outcomes: list[str] = []
    stop = threading.Event()

    def load(client):
        images = np.zeros((1, 28, 28), np.float32)
        while not stop.is_set():
            try:
                client.predict(images)
                outcomes.append("ok")
            except Exception as error:  # noqa: BLE001 - every failure is counted, whatever its type
                outcomes.append(f"{type(error).__name__}: {error}")

    try:
        for server in servers:
            wait_available(server)
        with create_client("grpc", model_name=MODEL_NAME, grpc_address=target) as client:
            threads = [threading.Thread(target=load, args=(client,)) for _ in range(4)]
            for thread in threads:
                thread.start()
            try:
                _wait(lambda: min(_grpc_predicts(s) for s in servers) >= 20, "both replicas serving")
                servers[0].process.terminate()  # what the kubelet sends after preStop
                servers[0].process.wait(timeout=30)
                stopped_at = len(outcomes)
                _wait(lambda: len(outcomes) >= stopped_at + 100, "predicts after the stop")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
    finally:
        for server in servers:
            server.stop()
    failed = [outcome for outcome in outcomes if outcome != "ok"]
    figures.record(
        "rollout",
        "model server: one of two replicas stopped (SIGTERM) under gRPC load",
        requests=len(outcomes),
        failed=len(failed),
    )
    assert servers[0].process.returncode == 0
    assert not failed, failed[:5]


def _wait(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
