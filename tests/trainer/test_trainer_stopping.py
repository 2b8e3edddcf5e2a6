"""SIGTERM is recorded by its handler and acted on between training steps, never inside one."""

from __future__ import annotations

import os
import signal

import pytest

from mnist_trainer.stopping import StopOnSignal, Terminated


@pytest.fixture()
def restore_sigusr1():
    previous = signal.getsignal(signal.SIGUSR1)
    yield
    signal.signal(signal.SIGUSR1, previous)


def test_the_handler_only_records_and_check_raises_afterwards(restore_sigusr1):
    stop = StopOnSignal(signal.SIGUSR1)  # SIGUSR1: pytest's own SIGTERM handling stays untouched
    stop.check()  # nothing arrived yet: no exception
    os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here, in this thread
    assert stop.requested
    with pytest.raises(Terminated):
        stop.check()
    with pytest.raises(Terminated):  # and it stays requested
        stop.check()


def test_train_epoch_stops_before_the_step_after_the_request(keras):
    """A request after the second step: exactly two steps ran, the third batch is never taken."""
    import numpy as np
    import tensorflow as tf

    from mnist_trainer.loop import TrainingLoop
    from mnist_trainer.model import build_model

    model = build_model(1e-3)
    loop = TrainingLoop(model, tf.distribute.get_strategy(), global_batch_size=8)
    images = np.zeros((8 * 5, 28, 28), np.float32)
    labels = np.zeros(8 * 5, np.int64)
    taken = []
    batches = loop.distribute(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8))

    def counting(iterator):
        for batch in iterator:
            taken.append(1)
            yield batch

    checks = []

    def check_stop():
        checks.append(1)
        if len(checks) > 2:
            raise Terminated()

    with pytest.raises(Terminated):
        loop.train_epoch(counting(batches), steps=5, check_stop=check_stop)
    assert len(taken) == 2
    assert len(checks) == 3
