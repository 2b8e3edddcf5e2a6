"""The Procfile's `url` entry reports the version TF Serving serves by default: the newest AVAILABLE."""

from __future__ import annotations

from mnist_run.announce import STATUS_PATH, newest_available_version, serving_summary


def test_newest_available_version_ignores_loading_and_unloading_ones():
    body = {
        "name": "mnist",
        "status": {
            "available": True,
            "versions": [
                {"version": 1, "state": "AVAILABLE"},
                {"version": 3, "state": "LOADING"},
                {"version": 2, "state": "AVAILABLE"},
                {"version": 0, "state": "END"},
            ],
        },
    }
    assert newest_available_version(body) == 2


def test_no_available_version():
    assert newest_available_version({"status": {"versions": [{"version": 1, "state": "LOADING"}]}}) is None
    assert newest_available_version({}) is None


def test_under_a_rollout_the_announcer_shows_stable_and_canary_not_the_newest_version():
    status = {"versions": [{"version": 1, "state": "AVAILABLE"}, {"version": 2, "state": "AVAILABLE"}]}
    canary = {"policy": "labels", "stable": 1, "canary": 2, "canary_percent": 10}
    assert serving_summary({"status": status, "rollout": canary}) == "stable v1 at 90 %, canary v2 at 10 %"
    rolled_back = {"policy": "labels", "stable": 1, "canary": None, "canary_percent": 0}
    assert serving_summary({"status": status, "rollout": rolled_back}) == "stable v1 at 100 %, no canary"
    latest = {"policy": "latest", "summary": "the newest version serves everything"}
    assert serving_summary({"status": status, "rollout": latest}) == "model version 2, the newest (no rollout)"
    assert serving_summary({"status": {"versions": []}, "rollout": canary}) is None


def test_the_announcer_asks_for_status_only():
    # /api/v1/model also asks the model server for the newest version's metadata; the status
    # route does not, so a poll every 2 s never reaches a version a rollout is draining.
    assert STATUS_PATH == "/api/v1/model/status"
