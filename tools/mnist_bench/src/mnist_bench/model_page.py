"""mnist-bench model-page: how long the web UI's /model page takes to be useful, in headless
Chromium (Debian's, never a downloaded one), against a running stack (`make run`).

Timed by the browser's own clock from navigation start: the load event, the version columns
drawn (cards, held-out figures, curves) and the first live charts drawn (performance marks set by
model.js). The start page `/` is timed in the same run, alternating with /model, as the
reference a person already knows. The first visit of each page is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import statistics

CHROMIUM = "/usr/bin/chromium"
MODEL_PAGE_TIMES = """() => [
  performance.getEntriesByType("navigation")[0].loadEventEnd,
  performance.getEntriesByName("model-versions-drawn")[0].startTime,
  performance.getEntriesByName("model-live-drawn")[0].startTime,
]"""


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return (
        f"median {statistics.median(values):.0f} ms, p90 {p90:.0f}, min {ordered[0]:.0f}, "
        f"max {ordered[-1]:.0f} (n={len(values)})"
    )


def measure(url: str, runs: int, chromium: str) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {
        "/ load event": [],
        "/model load event": [],
        "/model versions drawn": [],
        "/model live charts drawn": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            for run in range(runs + 1):
                for path in ("/", "/model"):
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    page.goto(url.rstrip("/") + path, wait_until="load")
                    if path == "/":
                        times = [page.evaluate('performance.getEntriesByType("navigation")[0].loadEventEnd')]
                    else:
                        page.wait_for_selector('#versions[data-loaded="true"]', timeout=30_000)
                        page.wait_for_selector("#guard .guard-summary", timeout=30_000)
                        times = page.evaluate(MODEL_PAGE_TIMES)
                    context.close()
                    if run == 0:
                        continue  # warm-up
                    names = [name for name in found if name.startswith(path + " ")]
                    for name, value in zip(names, times, strict=True):
                        found[name].append(value)
        finally:
            browser.close()
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mnist-bench model-page", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the running web UI, e.g. http://127.0.0.1:8080")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs} must be at least 1")
    try:
        found = measure(args.url, args.runs, args.chromium)
    except Exception as error:  # Playwright raises its own errors for a missing browser or page
        print(f"error: timing {args.url}/model failed: {error}")
        return 1
    print(f"mnist-bench model-page --url {args.url} --runs {args.runs} (headless {args.chromium}):")
    for name, values in found.items():
        print(f"  {name:28s} {_summary(values)}")
    drawn = statistics.median(found["/model versions drawn"])
    print(f"  /model is useful after {drawn:.0f} ms (median; target under 1000 ms)")
    return 0 if drawn < 1000 else 1
