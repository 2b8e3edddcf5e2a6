"""The Procfile's `url` entry: wait for the web UI to serve a model, print the URL, report new versions.

The web UI's /readyz speaks for the UI process alone (so a model-server outage does not take it
out of a load balancer); "ready to use" needs the model too, so this asks /api/v1/model, which
answers 200 with the model server's version status once the UI can reach it.

It never exits on its own, because honcho stops the whole stack when any entry exits; it ends
when honcho sends SIGTERM (Ctrl-C).
"""

from __future__ import annotations

import signal
import sys
import time

import requests


def newest_available_version(model_body: dict) -> int | None:
    """The version TF Serving serves by default, from the web UI's /api/v1/model answer."""
    versions = (model_body.get("status") or {}).get("versions", [])
    available = [int(v["version"]) for v in versions if v.get("state") == "AVAILABLE"]
    return max(available) if available else None


def announce(url: str, poll_seconds: float = 2.0, patience_seconds: float = 30.0) -> None:
    ready_url = url.rstrip("/") + "/api/v1/model"
    shown_version = None
    announced = False
    started = time.monotonic()
    last_complaint = started
    while True:
        try:
            response = requests.get(ready_url, timeout=5)
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            ready = response.status_code == 200 and newest_available_version(body) is not None
            why = body.get("error") or f"HTTP {response.status_code}"
        except (requests.RequestException, ValueError) as error:
            ready, body, why = False, {}, f"not answering yet ({type(error).__name__})"
        if ready:
            version = newest_available_version(body)
            if not announced:
                print(f"ready: open {url}  (model version {version}; Ctrl-C stops everything)", flush=True)
                announced = True
            elif version != shown_version:
                print(f"now serving model version {version}", flush=True)
            shown_version = version
        elif time.monotonic() - last_complaint >= patience_seconds:
            print(f"still waiting for {ready_url}: {why}", flush=True)
            last_complaint = time.monotonic()
        time.sleep(poll_seconds)


def _stop(_signum, _frame):
    raise KeyboardInterrupt  # honcho's SIGTERM is the normal end: exit 0 like Ctrl-C


def main(url: str) -> int:
    signal.signal(signal.SIGTERM, _stop)
    try:
        announce(url)
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
