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
