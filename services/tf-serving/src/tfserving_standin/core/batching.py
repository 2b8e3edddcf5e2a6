"""Dynamic batching: concurrent requests for one signature become one signature call.

Requests from both front ends (REST and gRPC) go into one queue per (version, signature). A batch
closes when it reaches max_batch_size rows, or when its oldest request has waited
batch_timeout_micros, or at once when batching is off. Up to num_batch_threads batches run at a
time on a thread pool (TensorFlow releases the GIL while it computes), so while one batch runs
the next one fills up: under load, batches grow by themselves. A full queue is UNAVAILABLE, as
TF Serving's batch scheduler answers.

One departure from TF Serving's scheduler, on purpose: when no batch is running (every batch
thread idle) the queued requests go at once instead of waiting out batch_timeout_micros. Nothing
could join them usefully in that time on an idle server, and the wait was most of a lone
client's latency (2 ms of ~4.5 ms). While a batch runs, the next one waits for the timeout or a
full batch exactly as TF Serving's does: starting it on the second idle thread at once would
compute small batches beside the big one (a batch of one costs ~6x the CPU per digit of a batch
of 64) and take throughput away under load.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import time

import numpy as np

from tfserving_standin.core.config import BatchingParameters
from tfserving_standin.core.errors import ServingError, invalid_argument, unavailable

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future
    enqueued_at: float


class Batcher:
    """Merges requests for one Signature of one Servable; owned by the event loop thread."""

    def __init__(
        self,
        signature,
        params: BatchingParameters | None,
        executor: concurrent.futures.Executor,
        on_batch=None,
        unbatched_threads: int = 2,
    ):
        self._signature = signature
        self._enabled = params is not None
        # Without batching every request is its own signature call, several at a time.
        self._params = params or BatchingParameters(max_batch_size=1, num_batch_threads=unbatched_threads)
        self._executor = executor
        self._on_batch = on_batch  # callback(batch_rows) for metrics
        self._queue: collections.deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        self._free_threads = asyncio.Semaphore(self._params.num_batch_threads)
        self._running: set[asyncio.Task] = set()
        self._batches_in_flight = 0  # counted in _execute, so a finished batch stops counting at once
        self._closed = False
        self._loop_task = asyncio.get_running_loop().create_task(self._schedule())

    @property
    def max_rows(self) -> int:
        return self._params.max_batch_size

    async def submit(self, inputs: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        if self._closed:
            raise unavailable("Servable is being unloaded; retry")
        if self._enabled:
            if rows > self._params.max_batch_size:
                raise invalid_argument(
                    f"Task size {rows} is larger than maximum input batch size {self._params.max_batch_size}"
                )
            limit = self._params.max_batch_size * self._params.max_enqueued_batches
            if self._queued_rows + rows > limit:
                raise unavailable("The batch scheduling queue to which this task was submitted is full")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Task(inputs, rows, future, time.monotonic()))
        self._queued_rows += rows
        self._arrived.set()
        return await future

    async def _schedule(self) -> None:
        timeout = self._params.batch_timeout_micros / 1e6 if self._enabled else 0.0
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            await self._free_threads.acquire()
            # While another batch computes, wait for more rows as long as the oldest request still
            # may, unless the batch is full; an idle server dispatches at once (module docstring).
            deadline = self._queue[0].enqueued_at + timeout
            while self._enabled and self._batches_in_flight and self._queued_rows < self._params.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch = [self._queue.popleft()]
            rows = batch[0].rows
            while self._enabled and self._queue and rows + self._queue[0].rows <= self._params.max_batch_size:
                task = self._queue.popleft()
                batch.append(task)
                rows += task.rows
            self._queued_rows -= rows
            self._batches_in_flight += 1
            running = asyncio.get_running_loop().create_task(self._execute(batch, rows))
            self._running.add(running)
            running.add_done_callback(self._running.discard)

    async def _execute(self, batch: list[_Task], rows: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            batch = [task for task in batch if not task.future.done()]  # drop cancelled clients
            if not batch:
                return
            if self._on_batch:
                self._on_batch(rows)
            try:
                merged = _concatenate([task.inputs for task in batch])
                outputs = await loop.run_in_executor(self._executor, self._signature.run, merged)
            except ServingError as error:
                if len(batch) == 1:
                    _fail(batch[0], error)
                    return
                # One bad request (say, bytes that are not an image) must not fail its neighbours:
                # run each alone so only the culprit gets the error.
                for task in batch:
                    try:
                        _resolve(task, await loop.run_in_executor(self._executor, self._signature.run, task.inputs))
                    except ServingError as single_error:
                        _fail(task, single_error)
                return
            offset = 0
            for task in batch:
                _resolve(task, {name: value[offset : offset + task.rows] for name, value in outputs.items()})
                offset += task.rows
        except Exception as error:  # noqa: BLE001 - a batch failure is answered, never lost
            log.exception("batch of %d rows failed", rows)
            for task in batch:
                if not task.future.done():
                    task.future.set_exception(error)
        finally:
            self._batches_in_flight -= 1
            self._free_threads.release()
            self._arrived.set()  # a batch waiting for company may go now that the server is idle

    async def drain_and_close(self) -> None:
        """Stop taking requests and finish every queued and running batch (for unloading)."""
        self._closed = True
        self._arrived.set()
        await self._loop_task
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)


def _concatenate(inputs_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(inputs_list) == 1:
        return inputs_list[0]
    return {name: np.concatenate([inputs[name] for inputs in inputs_list]) for name in inputs_list[0]}


def _resolve(task: _Task, outputs: dict[str, np.ndarray]) -> None:
    if not task.future.done():
        task.future.set_result(outputs)


def _fail(task: _Task, error: Exception) -> None:
    if not task.future.done():
        task.future.set_exception(error)
