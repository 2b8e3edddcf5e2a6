"""Wires the pieces together: initial load, the gRPC front end, REST, polling.

As TF Serving does, the initial versions are loaded before the ports open, then the base paths
are polled every file_system_poll_wait_seconds. REST runs on this process's event loop; gRPC in a
front-end process that forwards each call here (grpc_api/frontend.py says why). SIGINT/SIGTERM stop
accepting, finish queued requests and exit; so does the gRPC front end exiting, with an error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import signal

from aiohttp import web

from tfserving_standin.core.api import ServingApi
from tfserving_standin.core.config import BatchingParameters, ModelConfig, MonitoringConfig
from tfserving_standin.core.config_reload import ConfigReloader
from tfserving_standin.core.errors import ServingError
from tfserving_standin.core.manager import ModelManager
from tfserving_standin.core.metrics import Metrics
from tfserving_standin.core.server_core import ServerCore, status_text
from tfserving_standin.grpc_api.dispatch import GrpcFrontEnd
from tfserving_standin.rest_api.server import RestFrontEnd

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The server cannot start with this configuration (as TF Serving: "Failed to start server")."""


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    models: list[ModelConfig]
    grpc_port: int = 8500
    rest_port: int = 8501
    host: str = "0.0.0.0"
    poll_seconds: float = 1.0
    batching: BatchingParameters | None = None  # None: batching off
    monitoring: MonitoringConfig = MonitoringConfig()
    max_request_bytes: int = 4 << 20
    client_timeout_seconds: float = 5.0  # REST: to send a whole request; also the keep-alive idle limit
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    config_file: str | None = None  # --model_config_file, re-read every config_poll_seconds when > 0
    config_poll_seconds: float = 0.0
    allow_unavailable_labels: bool = False  # --allow_version_labels_for_unavailable_models


def _configure_tensorflow(options: ServerOptions) -> None:
    import tensorflow as tf

    # Must happen before TensorFlow runs anything; 0 lets TensorFlow pick from the core count.
    tf.config.threading.set_intra_op_parallelism_threads(options.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(options.inter_op_threads)


async def serve(options: ServerOptions, stop: asyncio.Event | None = None) -> None:
    _configure_tensorflow(options)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    batch_threads = options.batching.num_batch_threads if options.batching else 2
    executor = concurrent.futures.ThreadPoolExecutor(batch_threads, thread_name_prefix="batch")
    metrics = Metrics([model.name for model in options.models])
    manager = ModelManager([], options.batching, executor, metrics, unbatched_threads=batch_threads)
    api = ServingApi(manager)

    # ServerCore::Create: the first ReloadConfig, labels checked before anything is loaded, then
    # the initial load, all before the ports open.
    core = ServerCore(manager, options.allow_unavailable_labels)
    try:
        await core.reload_config(options.models)
    except ServingError as error:
        await manager.close()
        executor.shutdown(wait=False)
        raise StartupError(status_text(error)) from None
    reloader = (
        ConfigReloader(core, options.config_file) if options.config_file and options.config_poll_seconds > 0 else None
    )

    grpc_front_end = GrpcFrontEnd(
        api,
        metrics,
        f"{options.host}:{options.grpc_port}",
        options.max_request_bytes,
        logging.getLevelName(logging.getLogger().getEffectiveLevel()),
    )
    await grpc_front_end.start()
    log.info("Running gRPC ModelServer at %s:%d ...", options.host, options.grpc_port)
    runner = None
    if options.rest_port:  # 0 turns REST off, as in TF Serving
        rest = RestFrontEnd(api, metrics, options.monitoring, options.max_request_bytes, options.client_timeout_seconds)
        # aiohttp closes a connection still waiting for a complete request head when its
        # keep-alive time is up, counted from the connection's start or its last response: that
        # is the deadline for slow (slowloris) clients. The body's deadline is RestFrontEnd's.
        # After an answer given before the whole body arrived (413, 408), aiohttp reads and drops
        # what the client still sends for lingering_time, so the client sees the answer and not a
        # reset: 1 s rather than aiohttp's 10, so a slow client is cut within the timeout + 1 s.
        runner = web.AppRunner(
            rest.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            keepalive_timeout=options.client_timeout_seconds,
            lingering_time=1.0,
        )
        await runner.setup()
        await web.TCPSite(runner, options.host, options.rest_port, backlog=1024).start()
        log.info("Exporting HTTP/REST API at:%s:%d ...", options.host, options.rest_port)
        if options.monitoring.prometheus_enabled:
            log.info(
                "Prometheus metrics at http://%s:%d%s",
                options.host,
                options.rest_port,
                options.monitoring.prometheus_path,
            )

    polling = asyncio.create_task(manager.poll_forever(options.poll_seconds)) if options.poll_seconds > 0 else None
    watching = asyncio.create_task(reloader.watch_forever(options.config_poll_seconds)) if reloader else None
    front_end_exit = asyncio.ensure_future(grpc_front_end.wait_closed())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopping, front_end_exit], return_when=asyncio.FIRST_COMPLETED)
        if front_end_exit.done():
            front_end_exit.result()  # raises FrontEndError: the server must not go on without gRPC
    finally:
        log.info("Shutting down")
        stopping.cancel()
        if polling:
            polling.cancel()
        if watching:
            watching.cancel()
        await grpc_front_end.stop(grace=2)
        await asyncio.gather(front_end_exit, return_exceptions=True)  # done: stopped, or already raised
        if runner is not None:
            await runner.cleanup()
        await manager.close()
        executor.shutdown(wait=True)
