"""The Procfile's `url` entry: wait for the web UI to serve a model, print the URL, report what serves.

The web UI's /readyz speaks for the UI process alone (so a model-server outage does not take it
out of a load balancer); "ready to use" needs the model too, so this asks /api/v1/model/status,
which answers 200 with the model server's version status and the rollout in force once the UI
can reach the model server. It asks for status only: no metadata and no inference, so it never
keeps a retired version busy (a rollout's drain waits for predicts to stop).

It never exits on its own, because honcho stops the whole stack when any entry exits; it ends
when honcho sends SIGTERM (Ctrl-C).
"""

from __future__ import annotations

import sys
import time

import requests

STATUS_PATH = "/api/v1/model/status"


def newest_available_version(model_body: dict) -> int | None:
    """The version TF Serving serves by default, from the web UI's /api/v1/model/status answer."""
    versions = (model_body.get("status") or {}).get("versions", [])
    available = [int(v["version"]) for v in versions if v.get("state") == "AVAILABLE"]
    return max(available) if available else None


def serving_summary(model_body: dict) -> str | None:
    """What answers predicts: stable and canary with their shares under a rollout, else the
    newest AVAILABLE version; None while no version is AVAILABLE."""
    newest = newest_available_version(model_body)
    if newest is None:
        return None
    rollout = model_body.get("rollout") or {}
    if rollout.get("policy") != "labels":
        return f"model version {newest}, the newest (no rollout)"
    percent = rollout.get("canary_percent") or 0
    if rollout.get("canary") is None:
        return f"stable v{rollout.get('stable')} at 100 %, no canary"
    return f"stable v{rollout.get('stable')} at {100 - percent:g} %, canary v{rollout.get('canary')} at {percent:g} %"


def announce(url: str, poll_seconds: float = 2.0, patience_seconds: float = 30.0) -> None:
    status_url = url.rstrip("/") + STATUS_PATH
    shown = None
    started = time.monotonic()
    last_complaint = started
    while True:
        try:
            response = requests.get(status_url, timeout=5)
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            summary = serving_summary(body) if response.status_code == 200 else None
            why = body.get("error") or f"HTTP {response.status_code}"
        except (requests.RequestException, ValueError) as error:
            summary, why = None, f"not answering yet ({type(error).__name__})"
        if summary is not None:
            if shown is None:
                print(f"ready: open {url}  ({summary}; Ctrl-C stops everything)", flush=True)
            elif summary != shown:
                print(f"now serving: {summary}", flush=True)
            shown = summary
        elif time.monotonic() - last_complaint >= patience_seconds:
            print(f"still waiting for {status_url}: {why}", flush=True)
            last_complaint = time.monotonic()
        time.sleep(poll_seconds)


def main(url: str) -> int:
    try:
        announce(url)
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
