"""`make bench`: the web UI's predict path under locust, on this machine.

Starts the model server and the web UI from the Procfile on free loopback ports, serving the
published model, runs locust headless (the WebUIPredictUser class: real held-out digits to
POST /api/v1/predict, each user starting requests as a Poisson process so that together they
offer target_rps) and prints requests per second and p50/p95/p99 latency, counted once every
user runs.
Writes <out>/webui.json plus locust's HTML report and CSV under <out>/<timestamp>/.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

from mnist_bench.cpu_share import CpuShare, web_ui_worker_rss_mib
from mnist_common import storage
from mnist_common.pipeline import published_versions
from mnist_run.ports import free_port
from mnist_run.procfile import ProcfileStack, StackError, stack_environment, venv_environment

PREDICT_NAME = "/api/v1/predict"
LOCUST_CLASS = "WebUIPredictUser"


@dataclass(frozen=True)
class BenchOptions:
    procfile: str
    locustfile: str
    model_base_path: str
    data_dir: str
    model_name: str
    out_dir: str
    users: int = 50
    spawn_rate: float = 25
    duration: str = "40s"
    # The offered load, spread over the users (each paced at target_rps / users requests/s);
    # 0: every user sends its next request as soon as the last is answered. 10 % above the
    # target: the target is about what is served, and a served rate is measured with margin only
    # when more is offered (an offer of exactly 300 serves 300 +- 1 %, Poisson noise over 40 s).
    target_rps: float = 330


def locust_command(options: BenchOptions, host: str, prefix: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        options.locustfile,
        "--headless",
        "--users",
        str(options.users),
        "--spawn-rate",
        str(options.spawn_rate),
        "--run-time",
        options.duration,
        "--host",
        host,
        "--csv",
        prefix,
        "--html",
        prefix + ".html",
        "--only-summary",
        # Count from when every user runs: the ramp-up offers less than the target load.
        "--reset-stats",
        "--exit-code-on-error",
        "0",
        LOCUST_CLASS,
    ]


def read_predict_row(stats_csv: str) -> dict[str, str]:
    with open(stats_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == PREDICT_NAME:
                return row
    raise ValueError(f"{stats_csv} has no {PREDICT_NAME} row: did any request run?")


TARGET_RPS = 300
TARGET_P95_MS = 100


def pacing_environment(options: BenchOptions) -> dict[str, str]:
    """How the locustfile paces WebUIPredictUser: target_rps spread evenly over the users
    (Poisson starts for each, mnist_loadtest.pacing)."""
    rate = options.target_rps / options.users if options.target_rps else 0
    return {"PREDICT_RATE_PER_USER": f"{rate:g}"}


def served_requests(ui_url: str) -> float | None:
    """Requests the web UI has answered so far, from its Prometheus counter (all workers);
    None when the page cannot be read (the CPU figures are then left out, not guessed)."""
    import requests

    try:
        text = requests.get(ui_url + "/metrics", timeout=10).text
    except requests.RequestException:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("webui_http_requests_total{")
    )


def cpu_figures(cpu_seconds: dict[str, float], requests_served: float | None) -> dict:
    """CPU seconds each part used during the locust run, and per request the web UI answered in
    that time (ramp-up included on both sides)."""
    per_request = {
        part: round(1000 * seconds / requests_served, 2) if requests_served else None
        for part, seconds in cpu_seconds.items()
    }
    return {"cpu_seconds": cpu_seconds, "cpu_ms_per_request": per_request}


def figures_from(row: dict[str, str], options: BenchOptions, load_before, load_after, command_text, report) -> dict:
    """What webui.json records, from locust's statistics row of the predict endpoint."""
    failures = int(row["Failure Count"])
    figures = {
        "endpoint": "POST " + PREDICT_NAME,
        "users": options.users,
        "offered_requests_per_second": options.target_rps or None,
        "duration": options.duration,
        "requests": int(row["Request Count"]),
        "failures": failures,
        "requests_per_second": round(float(row["Requests/s"]), 1),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "target": {"requests_per_second_min": TARGET_RPS, "p95_ms_max": TARGET_P95_MS},
        "command": command_text,
        "report": report,
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    figures["meets_target"] = (
        figures["requests_per_second"] >= TARGET_RPS and figures["p95_ms"] <= TARGET_P95_MS and failures == 0
    )
    return figures


_PART_NAMES = {"web_ui": "web UI", "model_server": "model server", "load_generator": "locust"}


def summary(figures: dict) -> str:
    offered = figures["offered_requests_per_second"]
    cpu = ""
    if figures.get("cpu_ms_per_request"):
        cpu = (
            "  CPU per request: "
            + ", ".join(
                f"{_PART_NAMES.get(part, part)} {ms:g} ms"
                for part, ms in figures["cpu_ms_per_request"].items()
                if ms is not None
            )
            + "\n"
        )
    rss = figures.get("web_ui_worker_rss_mib")
    memory = f"  web UI worker memory (RSS) after the run: {', '.join(f'{mib:g}' for mib in rss)} MiB\n" if rss else ""
    return (
        f"bench: web UI predict, {figures['users']} users, "
        f"{f'{offered:g} requests/s offered (Poisson arrivals)' if offered else 'no pacing'}, {figures['duration']} "
        f"on {figures['cpu_count']} cores (load average {figures['load_average_before'][0]:.1f} before the run, "
        f"shared machine):\n"
        f"  {figures['requests_per_second']} requests/s, p50 {figures['p50_ms']:g} ms, "
        f"p95 {figures['p95_ms']:g} ms, p99 {figures['p99_ms']:g} ms, "
        f"{figures['failures']} failed of {figures['requests']}\n"
        f"{cpu}"
        f"{memory}"
        f"  target: >= {TARGET_RPS} requests/s and p95 <= {TARGET_P95_MS} ms: "
        f"{'met' if figures['meets_target'] else 'NOT met'}"
    )


def run_bench(options: BenchOptions) -> int:
    if not published_versions(options.model_base_path):
        print(
            f"error: no model is published in {options.model_base_path}: run `make export` (or `make run`) first",
            file=sys.stderr,
        )
        return 2
    run_dir = os.path.join(options.out_dir, datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(run_dir, exist_ok=True)
    grpc_port, rest_port, ui_port = free_port(), free_port(), free_port()
    ui_url = f"http://127.0.0.1:{ui_port}"
    env = stack_environment(
        grpc_port=grpc_port,
        rest_port=rest_port,
        ui_port=ui_port,
        model_base_path=options.model_base_path,
        data_dir=options.data_dir,
        model_name=options.model_name,
    )
    stack = ProcfileStack(options.procfile, env, os.path.join(run_dir, "servers.log"), ["serving", "webui"])
    prefix = os.path.join(run_dir, "webui")
    command = locust_command(options, ui_url, prefix)
    pacing = pacing_environment(options)
    command_text = " ".join(f"{name}={value}" for name, value in pacing.items()) + " " + shlex.join(command)
    print(f"bench: servers on {ui_url} (web UI) and :{grpc_port} (gRPC), logs in {stack.log_path}")
    try:
        stack.start()
        stack.wait_until_serving(ui_url, timeout_seconds=180)
        print(f"bench: {command_text}", flush=True)
        load_before = os.getloadavg()
        cpu = CpuShare(stack.descendant_pids)
        served_before = served_requests(ui_url)
        cpu.start()
        result = subprocess.run(command, env=venv_environment({"DATA_DIR": options.data_dir, **pacing}), check=False)
        cpu.stop()  # before the stack stops: its exit would count as this process's children's CPU
        served_after = served_requests(ui_url)
        worker_rss = web_ui_worker_rss_mib(stack.descendant_pids())  # after every predict of the run
        served = None if served_before is None or served_after is None else served_after - served_before
        load_after = os.getloadavg()
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    if result.returncode != 0:
        print(f"error: locust exited with {result.returncode}", file=sys.stderr)
        return 1
    figures = figures_from(
        read_predict_row(prefix + "_stats.csv"), options, load_before, load_after, command_text, prefix + ".html"
    )
    figures.update(cpu_figures(cpu.seconds, served))
    figures["web_ui_worker_rss_mib"] = worker_rss
    out_file = os.path.join(options.out_dir, "webui.json")
    storage.write_bytes_atomic(out_file, (json.dumps(figures, indent=2) + "\n").encode())
    print(summary(figures) + f"\n  wrote {out_file} and {prefix}.html")
    return 0
