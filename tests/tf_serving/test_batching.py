"""The batcher on a fake signature: merging, limits, isolation of a bad request, draining."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import grpc
import numpy as np
import pytest

from tfserving_standin.core.batching import Batcher
from tfserving_standin.core.config import BatchingParameters
from tfserving_standin.core.errors import ServingError, invalid_argument


class FakeSignature:
    """Doubles its input; records every call's batch size; can be slow; rejects negative rows."""

    name = "fake"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def run(self, inputs):
        x = inputs["x"]
        with self._lock:
            self.calls.append(len(x))
        time.sleep(self.delay)
        if (x < 0).any():
            raise invalid_argument("negative input")
        return {"y": x * 2}


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def executor():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        yield pool


def rows(*values):
    return {"x": np.asarray(values, dtype=np.float32)}


def test_concurrent_requests_share_one_signature_call(executor):
    signature = FakeSignature()
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=50_000, num_batch_threads=1)

    async def scenario():
        batcher = Batcher(signature, params, executor)
        results = await asyncio.gather(*(batcher.submit(rows(i), 1) for i in range(10)))
        await batcher.drain_and_close()
        return results

    results = run(scenario())
    assert signature.calls == [10]
    assert [r["y"].tolist() for r in results] == [[2.0 * i] for i in range(10)]


def test_batches_never_exceed_max_batch_size_and_keep_order(executor):
    signature = FakeSignature(delay=0.01)
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=20_000, num_batch_threads=1)

    async def scenario():
        batcher = Batcher(signature, params, executor)
        results = await asyncio.gather(*(batcher.submit(rows(i, i + 0.5), 2) for i in range(7)))
        await batcher.drain_and_close()
        return results

    results = run(scenario())
    assert max(signature.calls) <= 4 and sum(signature.calls) == 14
    assert [r["y"].tolist() for r in results] == [[2.0 * i, 2.0 * i + 1] for i in range(7)]


def test_without_batching_each_request_runs_alone(executor):
    signature = FakeSignature()

    async def scenario():
        batcher = Batcher(signature, None, executor)
        await asyncio.gather(*(batcher.submit(rows(i), 1) for i in range(5)))
        await batcher.drain_and_close()

    run(scenario())
    assert signature.calls == [1] * 5


def test_a_bad_request_fails_alone(executor):
    signature = FakeSignature()
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000, num_batch_threads=1)

    async def scenario():
        batcher = Batcher(signature, params, executor)
        results = await asyncio.gather(
            batcher.submit(rows(1), 1), batcher.submit(rows(-1), 1), batcher.submit(rows(3), 1), return_exceptions=True
        )
        await batcher.drain_and_close()
        return results

    good, bad, other = run(scenario())
    assert good["y"].tolist() == [2.0] and other["y"].tolist() == [6.0]
    assert isinstance(bad, ServingError) and bad.code == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_request_and_full_queue(executor):
    signature = FakeSignature(delay=0.2)
    params = BatchingParameters(max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=1, num_batch_threads=1)

    async def scenario():
        batcher = Batcher(signature, params, executor)
        with pytest.raises(ServingError) as too_big:
            await batcher.submit(rows(1, 2, 3), 3)
        assert too_big.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "larger than maximum input batch size 2" in too_big.value.message
        first = asyncio.ensure_future(batcher.submit(rows(1, 2), 2))
        await asyncio.sleep(0.05)  # running now, so the queue is empty again
        queued = asyncio.ensure_future(batcher.submit(rows(3, 4), 2))
        await asyncio.sleep(0)
        with pytest.raises(ServingError) as full:
            await batcher.submit(rows(5), 1)
        assert full.value.code == grpc.StatusCode.UNAVAILABLE
        await asyncio.gather(first, queued)
        await batcher.drain_and_close()

    run(scenario())


def test_drain_finishes_queued_requests_then_refuses(executor):
    signature = FakeSignature(delay=0.05)
    params = BatchingParameters(max_batch_size=1, batch_timeout_micros=0, num_batch_threads=1)

    async def scenario():
        batcher = Batcher(signature, params, executor)
        pending = [asyncio.ensure_future(batcher.submit(rows(i), 1)) for i in range(3)]
        await asyncio.sleep(0)
        await batcher.drain_and_close()
        assert all(task.done() and not task.exception() for task in pending)
        with pytest.raises(ServingError) as refused:
            await batcher.submit(rows(1), 1)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE

    run(scenario())


class GatedSignature(FakeSignature):
    """Its first call reports that it started, then holds its batch thread until the gate opens."""

    def __init__(self):
        super().__init__()
        self.first_call_started = threading.Event()
        self.gate = threading.Event()

    def run(self, inputs):
        first = not self.calls
        result = super().run(inputs)
        if first:
            self.first_call_started.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return result


# Far longer than any test waits: a request that waited it out would fail the test's bound.
NEVER = 60_000_000
BOUND_SECONDS = 20


def test_an_idle_server_dispatches_a_lone_request_at_once(executor):
    signature = FakeSignature()
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=NEVER, num_batch_threads=2)

    async def scenario():
        batcher = Batcher(signature, params, executor)
        result = await asyncio.wait_for(batcher.submit(rows(7), 1), BOUND_SECONDS)
        await batcher.drain_and_close()
        return result

    assert run(scenario())["y"].tolist() == [14.0]
    assert signature.calls == [1]


def test_while_a_batch_runs_the_next_one_fills_up_on_the_idle_thread(executor):
    """TF Serving's semantics under load: a free thread does not start a small batch beside a running one."""
    signature = GatedSignature()
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=NEVER, num_batch_threads=2)

    async def scenario():
        loop = asyncio.get_running_loop()
        batcher = Batcher(signature, params, executor)
        running = asyncio.ensure_future(batcher.submit(rows(0), 1))
        assert await loop.run_in_executor(None, signature.first_call_started.wait, BOUND_SECONDS)
        # Only a full batch may go while the first one holds its thread: these 4 rows close it.
        filled = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(rows(i), 1) for i in range(1, 5))), BOUND_SECONDS
        )
        assert signature.calls == [1, 4]
        signature.gate.set()
        await running
        await batcher.drain_and_close()
        return filled

    assert [r["y"].tolist() for r in run(scenario())] == [[2.0 * i] for i in range(1, 5)]


def test_a_waiting_batch_goes_as_soon_as_the_running_one_ends(executor):
    signature = GatedSignature()
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=NEVER, num_batch_threads=2)

    async def scenario():
        loop = asyncio.get_running_loop()
        batcher = Batcher(signature, params, executor)
        running = asyncio.ensure_future(batcher.submit(rows(0), 1))
        assert await loop.run_in_executor(None, signature.first_call_started.wait, BOUND_SECONDS)
        waiting = asyncio.ensure_future(batcher.submit(rows(5), 1))
        await asyncio.sleep(0)  # queued behind the running batch, not full, so it waits
        assert signature.calls == [1]
        signature.gate.set()
        await running
        result = await asyncio.wait_for(waiting, BOUND_SECONDS)
        await batcher.drain_and_close()
        return result

    assert run(scenario())["y"].tolist() == [10.0]
    assert signature.calls == [1, 1]
