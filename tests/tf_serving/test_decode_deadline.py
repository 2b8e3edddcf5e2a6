"""Images decode off the pixel predicts' path, with a deadline (core/api.py, core/manager.py).

In-process, with signatures whose calls block until the test lets them go (handshakes, no
sleeps): while an image request's decode holds its thread, pixel predicts are answered, more of
them than there are batch threads; a second image request waits for the decode thread rather
than taking a batch thread, and is answered DEADLINE_EXCEEDED when its deadline passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tfserving_standin.core.api import ServingApi
from tfserving_standin.core.errors import ServingError
from tfserving_standin.core.manager import AVAILABLE, ModelManager, VersionState
from tfserving_standin.core.servable import Signature, TensorSpec

DT_FLOAT, DT_STRING, DT_INT64 = 1, 7, 9
BATCH_THREADS = 2
DEADLINE_S = 0.3  # the short deadline; the test waits for it through the answer, never with a sleep


class _Servable:
    model_name = "mnist"


def _outputs(rows: int) -> dict:
    return {"classes": tf.zeros([rows], tf.int64)}


def test_a_slow_decode_holds_neither_the_batch_threads_nor_its_client():
    entered, release = threading.Event(), threading.Event()
    decode_threads: set[str] = set()
    pixel_threads: set[str] = set()

    def slow_decode(image_bytes):
        decode_threads.add(threading.current_thread().name)
        entered.set()
        assert release.wait(60)
        return _outputs(int(image_bytes.shape[0]))

    def pixels(images):
        pixel_threads.add(threading.current_thread().name)
        return _outputs(int(images.shape[0]))

    classes = {"classes": TensorSpec("classes", DT_INT64, (None,))}
    image_signature = Signature(
        "predict_image_bytes", {"image_bytes": TensorSpec("image_bytes", DT_STRING, (None,))}, classes, slow_decode
    )
    pixel_signature = Signature(
        "serving_default", {"images": TensorSpec("images", DT_FLOAT, (None, 28, 28))}, classes, pixels
    )
    image_request = {"image_bytes": np.array([b"not decoded here"], dtype=object)}
    pixel_request = {"images": np.zeros((1, 28, 28), np.float32)}

    async def scenario():
        batch = concurrent.futures.ThreadPoolExecutor(BATCH_THREADS, thread_name_prefix="batch")
        decode = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="decode")
        manager = ModelManager([], None, batch, unbatched_threads=BATCH_THREADS, decode_executor=decode)
        patient = ServingApi(manager, decode_deadline_seconds=600)  # never passes in this test
        hasty = ServingApi(manager, decode_deadline_seconds=DEADLINE_S)
        state = VersionState(version=1, state=AVAILABLE, servable=_Servable())
        try:
            first = asyncio.ensure_future(patient.predict(state, image_signature, image_request))
            await asyncio.to_thread(entered.wait, 30)  # the first decode holds the decode thread now
            answers = await asyncio.gather(
                *(patient.predict(state, pixel_signature, pixel_request) for _ in range(4 * BATCH_THREADS))
            )
            assert all(list(a["classes"]) == [0] for a in answers)
            assert not first.done()  # still decoding: the pixel predicts did not wait for it
            # A second image request queues for the decode thread, which is held: its deadline passes.
            with pytest.raises(ServingError) as raised:
                await hasty.predict(state, image_signature, image_request)
            assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert raised.value.http_status == 504 and "longer than" in raised.value.message
            assert not first.done()
            release.set()
            assert list((await first)["classes"]) == [0]
        finally:
            release.set()
            await manager.close()
            batch.shutdown(wait=True)
            decode.shutdown(wait=True)

    asyncio.run(scenario())
    assert decode_threads and all(name.startswith("decode") for name in decode_threads)
    assert pixel_threads and all(name.startswith("batch") for name in pixel_threads)
