"""Real processes for the integration and browser tests: the TF Serving stand-in and gunicorn.

Both listen on free loopback ports and are stopped by their pid, never by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import requests

from mnist_run.ports import free_port
from tests.support.standin import standin_command
from tests.support.waiting import wait_for

VENV_BIN = os.path.dirname(sys.executable)


class ManagedProcess:
    """A subprocess whose output goes to a log file that failures quote."""

    def __init__(self, name: str, log_path: str):
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def _spawn(self, command: list[str], env: dict | None = None) -> None:
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        finally:
            log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, check, timeout: float, what: str) -> None:
        wait_for(
            check,
            timeout,
            f"{self.name}: {what}",
            interval=0.2,
            process=self.process,
            log_tail=self.log_tail,
            ignore=(requests.RequestException,),
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Its own session: signal the process group (gunicorn's workers too), by pid.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class StandIn(ManagedProcess):
    """tfserving-standin serving model `mnist` from a base path."""

    def __init__(self, model_base_path: str, log_path: str, model_name: str = "mnist"):
        super().__init__("tfserving-standin", log_path)
        self.model_base_path = model_base_path
        self.model_name = model_name
        self.grpc_port = free_port()
        self.rest_port = free_port()

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 120) -> StandIn:
        self._spawn(
            standin_command(
                grpc_port=self.grpc_port,
                rest_port=self.rest_port,
                base_path=self.model_base_path,
                model_name=self.model_name,
                poll_seconds=1,
                batching=False,
                monitoring=False,
            )
        )
        self.wait_until(self._available, timeout, "model AVAILABLE")
        return self

    def _available(self) -> bool:
        answer = requests.get(f"{self.rest_url}/v1/models/{self.model_name}", timeout=2)
        states = [v.get("state") for v in answer.json().get("model_version_status", [])]
        return answer.status_code == 200 and "AVAILABLE" in states


class WebUiServer(ManagedProcess):
    """The web UI as `make ui` runs it: gunicorn with mnist_webui.gunicorn_conf."""

    def __init__(self, standin: StandIn, data_dir: str, log_path: str, protocol: str = "grpc", workers: int = 1):
        super().__init__("gunicorn (web UI)", log_path)
        self.port = free_port()
        self.env = dict(
            os.environ,
            UI_PORT=str(self.port),
            MODEL_NAME=standin.model_name,
            SERVING_PROTOCOL=protocol,
            SERVING_GRPC_ADDRESS=standin.grpc_address,
            SERVING_REST_URL=standin.rest_url,
            SERVING_TIMEOUT_SECONDS="2",
            DATA_DIR=data_dir,
            WEB_WORKERS=str(workers),
            WEB_THREADS="4",
        )
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> WebUiServer:
        self._spawn(
            [os.path.join(VENV_BIN, "gunicorn"), "-c", "python:mnist_webui.gunicorn_conf", "mnist_webui:create_app()"],
            env=self.env,
        )
        self.wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=2).ok, timeout, "/healthz answering")
        return self


class CuttableLink:
    """A loopback TCP forwarder to a server that a test can cut and restore.

    Cut: the listening port closes (new connections are refused) and open connections drop,
    which is what a client sees when the model server dies; restored: the same port accepts
    again. Much faster than restarting a server that imports TensorFlow.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self) -> CuttableLink:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            _close(listener)
        for connection in connections:
            _close(connection)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the link was cut
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client), _close(server)
                    return
                self._connections.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
