"""Faults of the model server seen through the web UI, under steady load.

tests/tf_serving/test_versions.py already publishes a version and adds a corrupt one under traffic
sent straight to the model server; these tests send the traffic through the web UI (gunicorn,
gRPC to tfserving-standin), which is what people use, and add killing the model server.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
import requests

from tests.resilience.figures import record
from tests.resilience.resilience_support import POLL_SECONDS, WebLoad
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

# One poll of the base path, then loading and warming up a SavedModel on a busy 2-core machine.
SWITCH_BUDGET_S = POLL_SECONDS + 14
# After the model server is back: gRPC's reconnect backoff is capped at 2 s in the client.
RECOVERY_BUDGET_S = 15


@pytest.fixture(scope="module")
def digit_body(data_dir) -> dict:
    from mnist_common.dataset import load_split

    return {"pixels": load_split(data_dir, "test", limit=1).as_float()[0].tolist()}


def predict_url(stack) -> str:
    return f"{stack.web.url}/api/v1/predict"


def model_status(stack) -> dict:
    return requests.get(f"{stack.web.url}/api/v1/model", timeout=10).json()["status"]


def describe(outcomes) -> list[str]:
    return [f"{o.status} {o.reason}" for o in outcomes[:5]]


def test_a_version_published_under_load_answers_with_zero_failed_requests(stack, digit_body):
    old = max(stack.versions_on_disk())
    new = old + 1
    with WebLoad(predict_url(stack), digit_body) as load:
        wait_for(lambda: len(load.snapshot()) >= 10, 30, "traffic before publishing")
        published_at = time.monotonic()
        stack.publish(new)
        answered_at = wait_for(
            lambda: next((o.at for o in load.since(published_at) if o.version == new), None),
            SWITCH_BUDGET_S,
            f"version {new} to answer through the web UI",
        )
        # Keep the load going until the old version is unloaded, and a little after.
        wait_for(
            lambda: old not in [v["version"] for v in model_status(stack)["versions"] if v["state"] == "AVAILABLE"],
            SWITCH_BUDGET_S,
            f"version {old} to unload",
        )
        time.sleep(1)
    outcomes = load.snapshot()
    failed = [o for o in outcomes if o.status != 200]
    record(
        "faults",
        "version published under web UI load",
        requests_sent=len(outcomes),
        requests_failed=len(failed),
        switch_seconds=round(answered_at - published_at, 2),
        poll_seconds=POLL_SECONDS,
    )
    assert failed == [], describe(failed)
    assert len(outcomes) > 20
    versions_seen = [o.version for o in outcomes]
    assert set(versions_seen) == {old, new}
    # Once the new version has answered, the old one never answers again.
    # Once the new version has answered, the old one stops answering (requests already queued
    # for it may finish within a moment).
    late_old = [o for o in outcomes if o.version == old and o.at > answered_at + 1.0]
    assert late_old == []


def test_a_corrupt_version_keeps_the_previous_serving_and_the_status_api_shows_the_error(stack, digit_body):
    serving = max(stack.versions_on_disk())
    broken = serving + 1
    staging = stack.base_path / f".staging-{broken}"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"\x08\x01 this is not a SavedModel")
    (staging / "variables").mkdir()
    try:
        with WebLoad(predict_url(stack), digit_body) as load:
            wait_for(lambda: len(load.snapshot()) >= 10, 30, "traffic before the corrupt version")
            os.rename(staging, stack.base_path / str(broken))
            entry = wait_for(
                lambda: next(
                    (v for v in model_status(stack)["versions"] if v["version"] == broken and v["error_code"] != "OK"),
                    None,
                ),
                SWITCH_BUDGET_S,
                f"the web UI's status API to show version {broken}'s error",
            )
            time.sleep(POLL_SECONDS * 2)  # later polls must not unload the version that serves
        status = model_status(stack)
    finally:
        for leftover in (staging, stack.base_path / str(broken)):
            if leftover.exists():
                shutil.rmtree(leftover)
    outcomes = load.snapshot()
    failed = [o for o in outcomes if o.status != 200]
    record(
        "faults",
        "corrupt version beside a serving one (web UI load)",
        requests_sent=len(outcomes),
        requests_failed=len(failed),
    )
    assert failed == [], describe(failed)
    assert {o.version for o in outcomes} == {serving}
    assert entry["state"] == "END" and entry["error_message"]
    assert status["available"] is True
    assert [v["version"] for v in status["versions"] if v["state"] == "AVAILABLE"] == [serving]


def _gunicorn_pids(stack) -> set[int]:
    import psutil

    master = psutil.Process(stack.web.process.pid)
    return {master.pid, *(child.pid for child in master.children(recursive=True))}


def test_model_server_killed_and_restarted_under_load_web_ui_says_503_then_recovers_by_itself(stack, digit_body):
    pids_before = _gunicorn_pids(stack)
    with WebLoad(predict_url(stack), digit_body) as load:
        wait_for(lambda: len(load.snapshot()) >= 10, 30, "traffic before the kill")
        killed_at = time.monotonic()
        os.kill(stack.standin.process.pid, signal.SIGKILL)
        stack.standin.process.wait(timeout=10)
        wait_for(lambda: any(o.status == 503 for o in load.since(killed_at)), 15, "a 503 from the web UI")
        time.sleep(1)
        readiness = requests.get(f"{stack.web.url}/readyz", timeout=10)
        liveness = requests.get(f"{stack.web.url}/healthz", timeout=10)
        stack.standin.start()  # same ports; returns once the model is AVAILABLE again
        back_at = time.monotonic()
        recovered_at = wait_for(
            lambda: next((o.at for o in load.since(back_at) if o.status == 200), None),
            RECOVERY_BUDGET_S,
            "the web UI to answer 200 again",
        )
        time.sleep(2)  # steady traffic after recovery
    outcomes = load.snapshot()
    before = [o for o in outcomes if o.at < killed_at]
    outage = [o for o in outcomes if killed_at <= o.at <= recovered_at]
    after = [o for o in outcomes if o.at > recovered_at + 1.0]  # requests sent before recovery may still 503
    refused = [o for o in outage if o.status == 503]
    # Failed: anything but the normal answer, or (while it is down) a 503 with a reason.
    wrong = [o for o in outage if o.status not in (200, 503) or (o.status == 503 and not o.reason)]
    wrong += [o for o in before + after if o.status != 200]
    record(
        "faults",
        "model server killed and restarted under web UI load",
        requests_sent=len(outcomes),
        requests_failed=len(wrong),
        answered_503_with_reason=len(refused),
        outage_seconds=round(recovered_at - killed_at, 2),
        recovery_after_restart_seconds=round(recovered_at - back_at, 2),
    )
    assert before and all(o.status == 200 for o in before), describe(before)
    # While it is down: 503 with a reason, nothing else (no 500/502, no dropped connection).
    assert refused, "no request saw the outage"
    assert wrong == [], describe(wrong)
    # The UI stays ready (in the load balancer, showing its banner) and says what it saw.
    assert readiness.status_code == 200 and readiness.json()["model_server"]["state"] == "down"
    assert liveness.status_code == 200
    assert after and all(o.status == 200 for o in after), describe([o for o in after if o.status != 200])
    # Recovered by itself: the same gunicorn master and worker, nothing restarted.
    assert _gunicorn_pids(stack) == pids_before
