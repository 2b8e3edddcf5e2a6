"""Load tests of the inference path: the web UI, and TF Serving's REST and gRPC Predict.

User classes (pick by name: `locust -f loadtest/locustfile.py WebUIUser`, or by tag: `--tags grpc`):
  WebUIUser         a person clicking around: the page, a random digit, its prediction   tags: webui, page, sample, predict
  WebUIPredictUser  POST /api/v1/predict with real digits, paced by $PREDICT_RATE_PER_USER   tags: webui, predict
                    (Poisson starts, requests/s per user; unset: no pause) (make bench)
  ServingRestUser   TF Serving REST  POST /v1/models/<name>:predict                         tags: serving, rest, predict
  ServingGrpcUser   TF Serving gRPC  PredictionService/Predict (mnist_common's client)      tags: serving, grpc, predict

Host: --host (make loadtest TARGET=...) applies to every selected class, so give one class a
host at a time; without it the serving classes target $SERVING_REST_URL and
$SERVING_GRPC_ADDRESS (the web UI's names for the model server) when set, and each class
otherwise the local stack: http://127.0.0.1:$UI_PORT, http://127.0.0.1:$REST_PORT and
127.0.0.1:$GRPC_PORT. The gRPC host may be written host:port,
grpc://host:port or http://host:port.
Digits: the held-out test split of $DATA_DIR (default artifacts/data/mnist), real MNIST digits.
"""

from __future__ import annotations

import os

# Quiet TensorFlow's start-up chatter (the gRPC client's protos import it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# gRPC's own threads would block gevent's loop (and with it every locust user): let gRPC
# cooperate with gevent before any channel exists. Locust has monkey-patched by this point.
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

import functools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from locust import stats as locust_stats  # noqa: E402
from locust import FastHttpUser, User, between, events, tag, task  # noqa: E402

from mnist_loadtest.pacing import PoissonPacing  # noqa: E402
from mnist_loadtest.addresses import grpc_address  # noqa: E402

MODEL_NAME = os.environ.get("MODEL_NAME", "mnist")
DATA_DIR = os.environ.get("DATA_DIR", "artifacts/data/mnist")
LOOPBACK = "127.0.0.1"
DIGITS_IN_POOL = 200  # pre-encoded request bodies: the load generator must stay cheap


@events.init.add_listener
def keep_only_users_with_tasks(environment, **_kwargs):
    """With --tags, drop the selected classes that have no task left, so `--tags grpc` works
    without naming the class (locust would start such users and fail: "No tasks defined")."""
    # Locust filters by tag when the run starts; filtering is idempotent, so do it now to see.
    environment._filter_tasks_by_tags()
    kept = [user_class for user_class in environment.user_classes if user_class.tasks]
    if not kept:
        raise SystemExit(f"error: no task of {[u.__name__ for u in environment.user_classes]} has the tags given")
    environment.user_classes[:] = kept
    warm_up(kept, environment.host)


@events.test_stop.add_listener
def name_the_targets_in_the_report(environment, **_kwargs):
    """Without --host each class has a host of its own, and locust's HTML report then says
    "Target Host: None": name each class's target instead. Only in a headless run, which ends
    here (the report is written next); in locust's web UI a set host would apply to every class
    of the next start."""
    options = environment.parsed_options
    if environment.host or options is None or not getattr(options, "headless", False):
        return
    environment.host = targets_described(environment.runner.user_classes if environment.runner else [])


def targets_described(user_classes) -> str:
    return ", ".join(f"{user_class.__name__} {user_class.host}" for user_class in user_classes) or "none"


@events.test_stop.add_listener
def let_the_csv_catch_up(environment, **_kwargs):
    """Locust rewrites <prefix>_stats.csv every CSV_STATS_INTERVAL_SEC and not again at exit, so
    the last second of requests would be missing from the file the SLO check reads. Every user
    has stopped when test_stop fires: waiting one interval lets the writer record the totals."""
    options = environment.parsed_options
    if options is not None and getattr(options, "csv_prefix", None):
        gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.2)


def warm_up(user_classes, host: str | None) -> None:
    """Load digits, encode bodies and import gRPC's protos before the clock starts, not while
    the first users run (TensorFlow's import alone takes seconds and would block every user)."""
    if WebUIPredictUser in user_classes:
        webui_bodies()
    if ServingRestUser in user_classes:
        rest_bodies()
    if ServingGrpcUser in user_classes:
        held_out_digits()
        shared_grpc_client(grpc_address(host or ServingGrpcUser.host))


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable) or default)


@functools.lru_cache(maxsize=1)
def held_out_digits() -> tuple:
    """(images float32 [N,28,28] in [0,1], labels) from the test split: what people would draw."""
    from mnist_common.dataset import DatasetError, load_split
    from mnist_common.idx import IdxFormatError

    try:
        split = load_split(DATA_DIR, "test", limit=DIGITS_IN_POOL)
    except (DatasetError, IdxFormatError, OSError) as error:
        raise SystemExit(f"error: no digits to send: {error} (run 'make data', or set DATA_DIR)") from None
    return split.as_float(), split.labels


@functools.lru_cache(maxsize=1)
def webui_bodies() -> tuple[bytes, ...]:
    images, _ = held_out_digits()
    return tuple(
        json.dumps({"pixels": [[round(float(v), 4) for v in row] for row in image]}).encode() for image in images
    )


@functools.lru_cache(maxsize=1)
def rest_bodies() -> tuple[bytes, ...]:
    images, _ = held_out_digits()
    return tuple(
        json.dumps({"signature_name": "serving_default", "inputs": {"images": [image.round(4).tolist()]}}).encode()
        for image in images
    )


def describe(response) -> str:
    """Why a request failed, in one line: the connection error or the status and body."""
    if getattr(response, "error", None) is not None and not response.status_code:
        return f"{type(response.error).__name__}: {response.error}"
    return f"HTTP {response.status_code}: {(response.text or '')[:200]}"


def check_webui_answer(response) -> None:
    """Mark a web UI prediction failed unless it has the documented shape."""
    try:
        body = response.json()
        ok = (
            response.status_code == 200
            and body["prediction"] in range(10)
            and len(body["probabilities"]) == 10
            and isinstance(body["model"]["version"], int)
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        response.failure(describe(response))


JSON_HEADERS = {"Content-Type": "application/json"}


class WebUIUser(FastHttpUser):
    """Someone on the web UI: opens the page, asks for digits, looks at predictions."""

    host = f"http://{LOOPBACK}:{_port('UI_PORT', 8080)}"
    wait_time = between(0.5, 2.0)

    def on_start(self):
        # People arrive on the page first (unless --tags left the page out).
        if WebUIUser.open_page in self.tasks:
            self.open_page()

    @tag("webui", "page")
    @task(1)
    def open_page(self):
        self.client.get("/", name="/")

    @tag("webui", "sample", "predict")
    @task(5)
    def predict_a_sample(self):
        with self.client.get("/api/v1/sample", name="/api/v1/sample", catch_response=True) as response:
            try:
                pixels = response.json()["pixels"]
            except (ValueError, KeyError, TypeError):
                response.failure("no pixels in the sample: " + describe(response))
                return
        with self.client.post(
            "/api/v1/predict",
            data=json.dumps({"pixels": pixels}),
            headers=JSON_HEADERS,
            name="/api/v1/predict",
            catch_response=True,
        ) as response:
            check_webui_answer(response)


def _predict_pacing() -> PoissonPacing | None:
    """PREDICT_RATE_PER_USER=r: each user starts requests as a Poisson process of r per second
    (together an offered load of users x r; see mnist_loadtest.pacing for why not a metronome).
    Unset or 0: None, no pause at all (a closed loop, where latency is users / throughput)."""
    rate = float(os.environ.get("PREDICT_RATE_PER_USER") or 0)
    return PoissonPacing(rate) if rate > 0 else None


class WebUIPredictUser(FastHttpUser):
    """The web UI's predict path: real digits, paced or flat out (make bench)."""

    host = WebUIUser.host
    pacing = _predict_pacing()

    def wait_time(self):
        return self.pacing(self) if self.pacing else 0

    @tag("webui", "predict")
    @task
    def predict(self):
        body = random.choice(webui_bodies())
        with self.client.post(
            "/api/v1/predict", data=body, headers=JSON_HEADERS, name="/api/v1/predict", catch_response=True
        ) as response:
            check_webui_answer(response)


class ServingRestUser(FastHttpUser):
    """A caller of TF Serving's REST predict (what the web UI does with SERVING_PROTOCOL=rest)."""

    host = os.environ.get("SERVING_REST_URL") or f"http://{LOOPBACK}:{_port('REST_PORT', 8501)}"
    wait_time = between(0.05, 0.25)

    @tag("serving", "rest", "predict")
    @task
    def predict(self):
        body = random.choice(rest_bodies())
        path = f"/v1/models/{MODEL_NAME}:predict"
        with self.client.post(path, data=body, headers=JSON_HEADERS, name=path, catch_response=True) as response:
            try:
                outputs = response.json()["outputs"]
                ok = response.status_code == 200 and len(outputs["probabilities"][0]) == 10
            except (ValueError, KeyError, TypeError, IndexError):
                ok = False
            if not ok:
                response.failure(describe(response))


@functools.cache
def shared_grpc_client(address: str):
    """One client (one channel) per process and address, like the web UI has."""
    from mnist_common.serving_client import create_client

    return create_client("grpc", MODEL_NAME, grpc_address=address)


class ServingGrpcUser(User):
    """A caller of TF Serving's gRPC PredictionService/Predict through mnist_common's client."""

    host = os.environ.get("SERVING_GRPC_ADDRESS") or f"{LOOPBACK}:{_port('GRPC_PORT', 8500)}"
    wait_time = between(0.05, 0.25)
    request_name = "PredictionService/Predict"

    def on_start(self):
        # The first client imports TensorFlow's protos (seconds); every user then shares it.
        self.client = shared_grpc_client(grpc_address(self.host))

    @tag("serving", "grpc", "predict")
    @task
    def predict(self):
        images, _ = held_out_digits()
        image = images[random.randrange(len(images))][None]
        started = time.perf_counter()
        exception = None
        try:
            prediction = self.client.predict(image)
            if prediction.probabilities.shape != (1, 10):
                raise ValueError(f"probabilities of shape {prediction.probabilities.shape}")
        except Exception as error:  # every failure is a failed request in the statistics
            exception = error
        self.environment.events.request.fire(
            request_type="grpc",
            name=self.request_name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exception,
            context={},
        )
