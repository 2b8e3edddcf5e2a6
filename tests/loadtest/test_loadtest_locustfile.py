"""Pieces of the locustfile and the benchmark that need no running server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnist_bench.webui import read_predict_row
from mnist_loadtest.addresses import grpc_address

# Not imported here: importing locust monkey-patches the whole process for gevent.


@pytest.mark.parametrize(
    "host, address",
    [
        ("127.0.0.1:8500", "127.0.0.1:8500"),
        ("grpc://10.0.0.7:9000", "10.0.0.7:9000"),
        ("http://localhost:8500", "localhost:8500"),
    ],
)
def test_grpc_host_forms(host, address):
    assert grpc_address(host) == address


def test_grpc_host_without_port_is_refused():
    with pytest.raises(ValueError, match="needs a host and a port"):
        grpc_address("grpc://somewhere")


def test_every_class_is_listed_and_tagged(repo_root):
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--list"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for name in ("WebUIUser", "WebUIPredictUser", "ServingRestUser", "ServingGrpcUser"):
        assert name in result.stdout


def test_bench_reads_the_predict_row(tmp_path):
    stats = tmp_path / "webui_stats.csv"
    stats.write_text(
        "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n"
        "POST,/api/v1/predict,1200,0,310.5,40,90,120\n"
        ",Aggregated,1200,0,310.5,40,90,120\n"
    )
    row = read_predict_row(str(stats))
    assert (row["Requests/s"], row["95%"]) == ("310.5", "90")
    stats.write_text("Type,Name,Request Count\n,Aggregated,0\n")
    with pytest.raises(ValueError, match="no /api/v1/predict row"):
        read_predict_row(str(stats))


def test_bench_paces_the_target_over_the_users_and_judges_the_target():
    from mnist_bench.webui import BenchOptions, figures_from, pacing_environment, summary

    options = BenchOptions(
        "Procfile", "loadtest/locustfile.py", "base", "data", "mnist", "out", users=50, target_rps=300
    )
    assert pacing_environment(options) == {"PREDICT_RATE_PER_USER": "6"}
    assert pacing_environment(BenchOptions(*["x"] * 6, target_rps=0)) == {"PREDICT_RATE_PER_USER": "0"}
    row = {"Request Count": "9000", "Failure Count": "0", "Requests/s": "301.4", "50%": "30", "95%": "95", "99%": "140"}
    figures = figures_from(row, options, (1.0, 1.0, 1.0), (2.0, 1.0, 1.0), "cmd", "report.html")
    assert figures["meets_target"] and "met" in summary(figures)
    slow = figures_from({**row, "95%": "130"}, options, (1.0,) * 3, (1.0,) * 3, "cmd", "report.html")
    assert not slow["meets_target"] and "NOT met" in summary(slow)
    failing = figures_from({**row, "Failure Count": "3"}, options, (1.0,) * 3, (1.0,) * 3, "cmd", "r.html")
    assert not failing["meets_target"]


@pytest.mark.parametrize("rate", ["6", ""])
def test_the_predict_user_waits_as_a_poisson_process_of_the_rate_per_user(repo_root, rate):
    # In a child: importing locust monkey-patches the process for gevent.
    code = (
        "import statistics, sys, locust; sys.path.insert(0, 'loadtest'); import locustfile as lf\n"
        "cls = lf.WebUIPredictUser; user = object.__new__(cls)\n"
        "waits = [cls.wait_time(user) for _ in range(4000)]\n"  # the clock barely moves: waits add up
        "gaps = [b - a for a, b in zip(waits, waits[1:])]\n"
        "print(type(cls.pacing).__name__, statistics.mean(gaps), statistics.pstdev(gaps), max(waits))\n"
    )
    env = {**os.environ, "PREDICT_RATE_PER_USER": rate, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    kind, mean, spread, longest = result.stdout.split()[-4:]
    if rate:
        # Exponential gaps of mean 1/6 s: as spread as they are long (a metronome's spread is 0).
        assert kind == "PoissonPacing"
        assert float(mean) == pytest.approx(1 / 6, rel=0.06)
        assert float(spread) == pytest.approx(1 / 6, rel=0.1)
    else:
        assert (kind, float(longest)) == ("NoneType", 0.0)  # unpaced: no pause at all


def test_bench_counts_from_when_every_user_runs():
    from mnist_bench.webui import BenchOptions, locust_command

    command = locust_command(BenchOptions(*["x"] * 6), "http://127.0.0.1:1", "prefix")
    assert "--reset-stats" in command and command[-1] == "WebUIPredictUser"


def test_cpu_is_told_apart_by_service_and_the_load_generator_is_this_process_s_finished_child():
    from mnist_bench.cpu_share import CpuShare, service_of

    assert service_of(["/venv/bin/python", "/venv/bin/tfserving-standin", "--port=1"]) == "model_server"
    assert (
        service_of(["/venv/bin/python", "-m", "tfserving_standin.grpc_api.frontend", "--address=x"]) == "model_server"
    )
    assert service_of(["/venv/bin/python", "/venv/bin/gunicorn", "-c", "x"]) == "web_ui"
    assert service_of(["make", "-s", "ui"]) is None
    burn = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
    # A "web UI" (the marker is in its command line) that burns CPU once told to, says so, and
    # lives until its stdin closes; and a child of this process that burns and finishes: the load
    # generator's part. The handshake, not a poll of /proc or a sleep, orders the samples, so a
    # slow machine cannot let the "web UI" exit before the second sample.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.stdin.readline()\n"
            + burn
            + "print(time.process_time() - t, flush=True)\nsys.stdin.read()",
            "gunicorn",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        share = CpuShare(lambda: [server.pid])
        share.start()
        server.stdin.write("go\n")
        server.stdin.flush()
        subprocess.run([sys.executable, "-c", burn], check=True)
        burnt = server.stdout.readline()
        seconds = share.stop()
    finally:
        server.kill()
        server.wait()
    assert float(burnt) >= 0.4, burnt
    assert seconds["load_generator"] >= 0.35, seconds
    assert seconds["web_ui"] >= 0.35, seconds
    assert seconds["model_server"] == 0.0


def test_bench_figures_give_cpu_per_served_request():
    from mnist_bench.webui import BenchOptions, cpu_figures, figures_from, summary

    cpu = cpu_figures({"model_server": 16.5, "web_ui": 20.5, "load_generator": 5.5}, 10000)
    assert cpu["cpu_ms_per_request"] == {"model_server": 1.65, "web_ui": 2.05, "load_generator": 0.55}
    assert cpu_figures({"web_ui": 1.0}, None)["cpu_ms_per_request"] == {"web_ui": None}
    row = {"Request Count": "9000", "Failure Count": "0", "Requests/s": "301.4", "50%": "30", "95%": "95", "99%": "140"}
    figures = {**figures_from(row, BenchOptions(*["x"] * 6), (1.0,) * 3, (1.0,) * 3, "cmd", "r.html"), **cpu}
    assert "CPU per request: model server 1.65 ms, web UI 2.05 ms, locust 0.55 ms" in summary(figures)


def test_worker_memory_is_read_from_the_workers_not_the_master():
    from mnist_bench.cpu_share import web_ui_worker_rss_mib

    # A "gunicorn master" that starts one "worker" holding ~64 MiB, prints the worker's pid once
    # the memory is touched, and keeps both alive until its stdin closes.
    worker_code = "import sys; block = bytearray(64 << 20); print('ready', flush=True); sys.stdin.read()"
    master_code = (
        "import subprocess, sys\n"
        f"w = subprocess.Popen([sys.executable, '-c', {worker_code!r}, 'gunicorn'], stdout=subprocess.PIPE, "
        "stdin=subprocess.PIPE, text=True)\n"
        "w.stdout.readline(); print(w.pid, flush=True); sys.stdin.read(); w.kill()\n"
    )
    master = subprocess.Popen(
        [sys.executable, "-c", master_code, "gunicorn"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        worker = int(master.stdout.readline())
        rss = web_ui_worker_rss_mib([master.pid, worker, os.getpid()])
    finally:
        master.stdin.close()
        master.wait(timeout=30)
    assert len(rss) == 1 and rss[0] >= 64, rss


def test_cross_validation_folds_are_disjoint_stratified_and_cover_every_digit():
    import numpy as np

    from mnist_bench.train import fold_data, fold_indices, pooled_interval

    labels = np.repeat(np.arange(10), 100)
    folds = fold_indices(labels, 5, seed=3)
    every = np.concatenate(folds)
    assert sorted(every.tolist()) == list(range(1000))
    assert all(np.bincount(labels[fold], minlength=10).tolist() == [20] * 10 for fold in folds)
    assert [f.tolist() for f in fold_indices(labels, 5, seed=3)] == [f.tolist() for f in folds]
    images = np.arange(1000, dtype=np.int32)[:, None]  # ids, not pixels: uint8 would wrap
    splits = fold_data(images, labels, folds[0])
    assert not set(splits["train"][0][:, 0].tolist()) & set(folds[0].tolist())
    assert splits["test"][0][:, 0].tolist() == folds[0].tolist()
    assert set(splits["validation"][0][:, 0].tolist()) <= set(splits["train"][0][:, 0].tolist())
    accuracy, half_width = pooled_interval(9888, 10000)
    assert accuracy == 0.9888 and 0.0020 < half_width < 0.0022


def test_the_kserve_ratios_compare_cells_of_the_same_run():
    from mnist_bench.serving import kserve_ratios

    def row(server, protocol, concurrency, rps, p50):
        return {"server": server, "protocol": protocol, "concurrency": concurrency, "rps": rps, "p50_ms": p50}

    rows = [
        row("stand-in", "rest", 1, 400, 1.0),
        row("stand-in", "rest", 64, 3000, 20.0),
        row("stand-in", "grpc", 64, 3500, 18.0),
        row("kserve", "rest", 1, 300, 1.5),
        row("kserve", "rest", 64, 700, 90.0),
    ]
    figures = kserve_ratios(rows, [1, 16, 64])["figures"]
    assert figures["rest_rps_ratio_at_64"] == round(3000 / 700, 2)
    assert figures["grpc_rps_ratio_at_64"] == 5.0
    assert figures["rest_p50_ms_at_1"] == [1.0, 1.5] and "grpc_p50_ms_at_1" not in figures


@pytest.mark.parametrize("folds", ["1", "-2"])
def test_bench_train_refuses_a_fold_count_that_cannot_cross_validate(folds, tmp_path, capsys):
    from mnist_bench.train import main

    with pytest.raises(SystemExit) as stopped:
        main(["--model-dir", str(tmp_path / "model"), "--folds", folds])
    assert stopped.value.code == 2
    assert f"--folds {folds}: give 0 (no cross-validation) or at least 2" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()  # refused before any training started
