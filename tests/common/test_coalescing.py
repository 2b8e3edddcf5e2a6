"""mnist_common.coalescing: one-digit predictions made at the same time share one call.

The wrapped client here is gated: each call it receives waits until the test releases it, so the
tests decide what is in flight while other predictions arrive (handshakes, no sleeps).
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest

from mnist_common import serving_client as sc
from mnist_common.coalescing import CoalescingClient
from tests.support.waiting import wait_for

WAIT_S = 10.0


def digit(identity: int) -> np.ndarray:
    """A [1, 28, 28] image whose first pixel says which prediction it is."""
    image = np.zeros((1, 28, 28), dtype=np.float32)
    image[0, 0, 0] = identity / 100
    return image


class GatedClient(sc.ServingClient):
    """Answers each image with class = its identity (first pixel x 100) and the call's number as
    the version; every call waits for release() unless `open` is set."""

    protocol = "gated"

    def __init__(self):
        super().__init__("mnist")
        self.calls: list[tuple[list[int], str | None, bool]] = []  # identities, label, label given
        self.started: queue.Queue = queue.Queue()
        self._releases: queue.Queue = queue.Queue()
        self.open = threading.Event()
        self.failures: dict[int, Exception] = {}  # call number -> error to raise
        self.refuse_batches = False  # BadRequest for any call of more than one image
        self.refused_identity: int | None = None  # BadRequest for any call holding this image
        self._lock = threading.Lock()

    def predict(self, images: np.ndarray, **kwargs) -> sc.Prediction:
        identities = [int(round(float(image[0, 0]) * 100)) for image in images]
        with self._lock:
            self.calls.append((identities, kwargs.get("label"), "label" in kwargs))
            number = len(self.calls)
        self.started.put(identities)
        if not self.open.is_set():
            self._releases.get(timeout=WAIT_S)
        if number in self.failures:
            raise self.failures[number]
        if self.refuse_batches and len(images) > 1:
            raise sc.BadRequest("Task size is larger than maximum input batch size")
        if self.refused_identity in identities:
            raise sc.BadRequest("the model server rejected image")
        probabilities = np.zeros((len(images), 10), dtype=np.float32)
        probabilities[:, 0] = 1.0
        return sc.Prediction(probabilities, np.array(identities, dtype=np.int64), "mnist", number)

    def release(self) -> None:
        self._releases.put(None)

    def model_status(self):
        return sc.ModelStatus("mnist", (sc.VersionStatus(1, "AVAILABLE"),))

    def model_metadata(self):
        return sc.ModelMetadata("mnist", 1)

    def close(self) -> None:
        self.closed = True


class Caller(threading.Thread):
    """predict() in a thread of its own; .outcome is the Prediction or the exception."""

    def __init__(self, client: CoalescingClient, identity: int, label: str | None = None):
        super().__init__(daemon=True)
        self.client, self.identity, self.label = client, identity, label
        self.outcome = None
        self.start()

    def run(self) -> None:
        try:
            if self.label is None:
                self.outcome = self.client.predict(digit(self.identity))
            else:
                self.outcome = self.client.predict(digit(self.identity), label=self.label)
        except Exception as error:  # noqa: BLE001 - the test looks at it
            self.outcome = error

    def result(self):
        self.join(WAIT_S)
        assert not self.is_alive(), f"prediction {self.identity} did not return"
        return self.outcome


def queue_up(client: CoalescingClient, identities, label=None) -> list[Caller]:
    """Predictions that arrive while a call is in flight: started one by one, each seen waiting."""
    callers = []
    for count, identity in enumerate(identities, start=1):
        callers.append(Caller(client, identity, label))
        wait_for(lambda n=count: client.queued(label) == n, WAIT_S, f"{count} predictions queued", interval=0.005)
    return callers


@pytest.fixture
def gated():
    inner = GatedClient()
    yield inner, CoalescingClient(inner, max_images=3)
    inner.open.set()
    for _ in range(20):
        inner.release()


def test_a_lone_prediction_goes_at_once_alone_as_the_caller_made_it(gated):
    inner, client = gated
    inner.open.set()
    prediction = client.predict(digit(7))
    assert inner.calls == [([7], None, False)]  # no label argument, as the caller made no label
    assert prediction.classes.tolist() == [7] and prediction.probabilities.shape == (1, 10)
    assert prediction.model_version == 1 and prediction.model_name == "mnist"


def test_predictions_arriving_during_a_call_go_together_in_the_next_and_get_their_own_rows(gated):
    inner, client = gated
    first = Caller(client, 1)
    assert inner.started.get(timeout=WAIT_S) == [1]
    waiting = queue_up(client, [2, 3, 4])
    inner.release()  # call 1 returns: 2, 3, 4 go as call 2
    assert inner.started.get(timeout=WAIT_S) == [2, 3, 4]
    assert first.result().classes.tolist() == [1] and first.result().model_version == 1
    inner.release()
    for caller in waiting:
        outcome = caller.result()
        assert outcome.classes.tolist() == [caller.identity]
        assert outcome.model_version == 2  # the version that answered the call it went in
    assert [identities for identities, _, _ in inner.calls] == [[1], [2, 3, 4]]


def test_a_group_is_at_most_max_images_and_the_rest_goes_next(gated):
    inner, client = gated
    first = Caller(client, 1)
    inner.started.get(timeout=WAIT_S)
    waiting = queue_up(client, [2, 3, 4, 5, 6])
    inner.release()
    assert inner.started.get(timeout=WAIT_S) == [2, 3, 4]  # max_images=3
    assert client.queued() == 2
    inner.release()
    assert inner.started.get(timeout=WAIT_S) == [5, 6]
    inner.release()
    assert [caller.result().classes.tolist() for caller in [first, *waiting]] == [[1], [2], [3], [4], [5], [6]]


def test_labels_never_share_a_call(gated):
    inner, client = gated
    stable = Caller(client, 1, "stable")
    assert inner.started.get(timeout=WAIT_S) == [1]
    canary = Caller(client, 2, "canary")  # nothing of its label in flight: goes at once
    assert inner.started.get(timeout=WAIT_S) == [2]
    later_stable = queue_up(client, [3], "stable")
    assert client.queued("canary") == 0
    inner.release()
    inner.release()
    assert inner.started.get(timeout=WAIT_S) == [3]
    inner.release()
    assert [call[1] for call in inner.calls] == ["stable", "canary", "stable"]
    assert [c.result().classes.tolist() for c in (stable, canary, *later_stable)] == [[1], [2], [3]]


def test_a_refused_image_in_a_group_fails_alone(gated):
    inner, client = gated
    inner.refused_identity = 3
    first = Caller(client, 1)
    inner.started.get(timeout=WAIT_S)
    waiting = queue_up(client, [2, 3, 4])
    inner.open.set()
    inner.release()
    results = {caller.identity: caller.result() for caller in waiting}
    assert isinstance(results[3], sc.BadRequest)
    assert results[2].classes.tolist() == [2] and results[4].classes.tolist() == [4]
    assert first.result().classes.tolist() == [1]
    # The group was sent once, then each of its images again by itself.
    sizes = sorted(len(identities) for identities, _, _ in inner.calls)
    assert sizes == [1, 1, 1, 1, 3]


def test_a_server_whose_batches_are_smaller_than_the_group_still_answers_each(gated):
    inner, client = gated
    inner.refuse_batches = True
    first = Caller(client, 1)
    inner.started.get(timeout=WAIT_S)
    waiting = queue_up(client, [2, 3])
    inner.open.set()
    inner.release()
    assert [caller.result().classes.tolist() for caller in [first, *waiting]] == [[1], [2], [3]]


def test_an_unavailable_server_fails_the_call_and_those_waiting_behind_it_at_once(gated):
    inner, client = gated
    inner.failures[1] = sc.ModelServerUnavailable("model server did not answer within 5 s", retryable=False)
    first = Caller(client, 1)
    inner.started.get(timeout=WAIT_S)
    waiting = queue_up(client, [2, 3])
    inner.release()
    errors = [caller.result() for caller in [first, *waiting]]
    assert all(isinstance(error, sc.ModelServerUnavailable) for error in errors)
    assert len({id(error) for error in errors}) == 3  # each thread raises its own copy
    assert all(not error.retryable and "5 s" in str(error) for error in errors)
    assert len(inner.calls) == 1  # nobody queued for another timeout
    # Nothing is left in flight: the next prediction goes at once.
    inner.open.set()
    assert client.predict(digit(9)).classes.tolist() == [9]


def test_any_other_failure_reaches_its_whole_call_and_the_next_group_still_goes(gated):
    inner, client = gated
    inner.failures[2] = sc.ServingError("model server failed (INTERNAL)")
    first = Caller(client, 1)
    inner.started.get(timeout=WAIT_S)
    failing = queue_up(client, [2, 3])
    inner.release()
    assert inner.started.get(timeout=WAIT_S) == [2, 3]
    after = queue_up(client, [4])
    inner.release()  # call 2 fails; call 3 carries 4
    assert inner.started.get(timeout=WAIT_S) == [4]
    inner.release()
    assert first.result().classes.tolist() == [1]
    assert [type(caller.result()) for caller in failing] == [sc.ServingError, sc.ServingError]
    assert after[0].result().classes.tolist() == [4]


def test_many_threads_each_get_their_own_answer(gated):
    inner, client = gated
    inner.open.set()
    callers = [Caller(client, identity, label=None if identity % 3 else "canary") for identity in range(1, 61)]
    for caller in callers:
        outcome = caller.result()
        assert outcome.classes.tolist() == [caller.identity], caller.identity
    assert sorted(i for identities, _, _ in inner.calls for i in identities) == list(range(1, 61))
    assert all(len(identities) <= 3 for identities, _, _ in inner.calls)
    assert client.queued() == 0 and client.queued("canary") == 0


def test_batches_and_the_rest_of_the_interface_pass_through(gated):
    inner, client = gated
    inner.open.set()
    two = np.concatenate([digit(4), digit(5)])
    assert client.predict(two).classes.tolist() == [4, 5]
    assert inner.calls == [([4, 5], None, False)]
    assert client.protocol == "gated" and client.model_name == "mnist"
    assert client.model_status().is_available and client.model_metadata().model_version == 1
    with pytest.raises(ValueError, match="shape"):
        client.predict(np.zeros((1, 27, 28), dtype=np.float32))
    client.close()
    assert inner.closed
    with pytest.raises(ValueError, match="max_images"):
        CoalescingClient(inner, max_images=0)
