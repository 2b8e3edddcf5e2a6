"""The Procfile's `url` entry reports the version TF Serving serves by default: the newest AVAILABLE."""

from __future__ import annotations

from mnist_run.announce import newest_available_version


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
