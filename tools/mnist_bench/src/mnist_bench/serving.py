"""`make bench-serving`: the stand-in's predict throughput and latency, with two references.

1. In-process: the SavedModel's serving_default called directly (batch 1 and a full batch),
   the ceiling any server in Python can approach on this machine.
2. The stand-in (REST and gRPC, batching on) under a separate load generator process at
   concurrency 1, 16 and 64, one digit per request: h2load (Debian's nghttp2-client, in C) when
   installed, for both protocols; else loadgen.py (raw HTTP/1.1, and a grpc.aio client), which
   costs about as much CPU as the server and so measures less than the server can do.
3. KServe's Python model server (--kserve-python: its own venv, `make kserve-setup`) on the same
   SavedModel, V1 REST, one worker, with the stand-in's TensorFlow thread settings, under the same
   load generator: the tool a user would pick instead; the table ends with the stand-in/KServe
   ratios.
4. A naive Flask app calling keras model.predict per request, under the same load generator.

Prints a table and the commands behind it; writes the figures to --out (JSON), with the machine's
load average, since the cores may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from mnist_common.pipeline import published_versions, version_path
from mnist_run.ports import free_port

# TensorFlow's thread pools, the same for the stand-in and for KServe (one thread per op, as
# `make serve` runs the stand-in: SERVING_TF_THREADS in mk/40-serve.mk), so that the comparison
# measures the servers around the model rather than two threading settings.
TF_INTRA_OP_THREADS = 1
TF_INTER_OP_THREADS = 1


def latest_version(base_path: pathlib.Path) -> pathlib.Path | None:
    versions = published_versions(str(base_path))
    return pathlib.Path(version_path(str(base_path), versions[-1])) if versions else None


def untrained_export(workdir: pathlib.Path) -> pathlib.Path:
    """Same computation as a trained model: enough to measure speed when nothing is published."""
    from mnist_exporter.saved_model import export_saved_model
    from mnist_trainer.model import build_model

    target = workdir / "models" / "mnist" / "1"
    export_saved_model(build_model(), str(target))
    return target


def in_process_rates(version_dir: pathlib.Path, seconds: float, batch: int) -> dict:
    code = f"""
import json, time, numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads({TF_INTRA_OP_THREADS})  # as the stand-in runs it
tf.config.threading.set_inter_op_parallelism_threads({TF_INTER_OP_THREADS})
fn = tf.saved_model.load({str(version_dir)!r}).signatures["serving_default"]
out = {{}}
for size in (1, {batch}):
    x = tf.constant(np.random.rand(size, 28, 28).astype(np.float32)); fn(images=x)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < {seconds}:
        fn(images=x); n += 1
    elapsed = time.perf_counter() - start
    out[str(size)] = {{"calls_per_s": round(n / elapsed, 1), "images_per_s": round(n * size / elapsed, 1)}}
print(json.dumps(out))
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180, ready: bytes = b"AVAILABLE") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if ready in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"error: {url} did not report AVAILABLE within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def loadgen(protocol: str, target: str, concurrency: int, args, body_file: pathlib.Path, commands: list) -> dict:
    command = [
        sys.executable,
        "-m",
        "mnist_bench.loadgen",
        "--protocol",
        protocol,
        "--target",
        target,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--body-file",
        str(body_file),
    ]
    commands.append(shlex.join(command))
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def grpc_body(body_file: pathlib.Path, target: pathlib.Path) -> None:
    """The PredictRequest as a gRPC message frame (flag byte, length, proto), for h2load."""
    import struct

    import numpy as np
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    images = np.asarray(json.loads(body_file.read_text())["instances"], dtype=np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_content=images.tobytes(),
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in images.shape]
            ),
        )
    )
    payload = request.SerializeToString()
    target.write_bytes(b"\x00" + struct.pack(">I", len(payload)) + payload)


def _counter_total(rest_port: int, prefix: str, entrypoint: str | None = None) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics", timeout=10) as page:
        text = page.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix + "{") and (entrypoint is None or f'entrypoint="{entrypoint}"' in line)
    )


def grpc_errors(rest_port: int) -> float:
    """gRPC failures the server counted (h2load sees HTTP 200 even when grpc-status is not OK)."""
    return _counter_total(rest_port, "tfserving_request_errors_total", "GRPC")


class ServerCpu:
    """The server's CPU time per request it answered over a cell, warm-up included on both
    sides: where a protocol's cost goes when the cores, not the model, are the limit."""

    def __init__(self, pid: int, rest_port: int):
        self._pid, self._rest_port = pid, rest_port
        self._start = self._read()

    def _read(self) -> tuple[float, float]:
        import psutil

        server = psutil.Process(self._pid)
        # All threads of the model server (event loop, batches) and of its gRPC front-end process.
        cpu = sum(sum(process.cpu_times()[:2]) for process in (server, *server.children(recursive=True)))
        return cpu, _counter_total(self._rest_port, "tfserving_requests_total")

    def ms_per_request(self) -> float | None:
        cpu, answered = self._read()
        requests = answered - self._start[1]  # the metrics page itself is not counted
        return round(1000 * (cpu - self._start[0]) / requests, 3) if requests > 0 else None


def h2load(
    protocol: str,
    port: int,
    concurrency: int,
    args,
    body: pathlib.Path,
    commands: list,
    metrics_port: int | None = None,
    server: str = "stand-in",
) -> dict:
    """Load from h2load (nghttp2's C load generator): far cheaper per request than a Python
    client, so the figures measure the server rather than the client. REST: HTTP/1.1, one
    connection per concurrent request, as wrk or ab would; gRPC: HTTP/2, up to 4 connections with
    the concurrent requests as streams over them, as gRPC clients share channels."""
    log_file = body.with_name(f"h2load-{server}-{protocol}-{concurrency}.log")  # one per cell: kept for reading
    log_file.unlink(missing_ok=True)  # h2load appends
    seconds = max(1, round(args.seconds))  # h2load takes whole seconds
    if protocol == "rest":
        shape = ["--h1", "-c", str(concurrency), "-m", "1", "-H", "content-type: application/json"]
        url = f"http://127.0.0.1:{port}/v1/models/mnist:predict"
    else:
        connections = min(4, concurrency)
        shape = [
            "-c",
            str(connections),
            "-m",
            str(-(-concurrency // connections)),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ]
        url = f"http://127.0.0.1:{port}/tensorflow.serving.PredictionService/Predict"
    command = [
        "h2load",
        *shape,
        "-D",
        str(seconds),
        "--warm-up-time",
        str(max(1, round(args.warmup))),
        "-d",
        str(body),
        "--log-file",
        str(log_file),
        url,
    ]
    commands.append(shlex.join(command))
    # gRPC failures travel in trailers with HTTP 200, which h2load counts as success: take the
    # server's own error counter (on its REST port, metrics_port) for them.
    count_errors = protocol == "grpc" and metrics_port is not None
    errors_before = grpc_errors(metrics_port) if count_errors else 0
    subprocess.run(command, capture_output=True, text=True, check=True)
    server_errors = int(grpc_errors(metrics_port) - errors_before) if count_errors else 0
    rows = [line.split("\t") for line in log_file.read_text().splitlines() if line.strip()]
    latencies = sorted(int(row[2]) / 1000 for row in rows if row[1] == "200")
    answered = len(latencies) - server_errors
    failed = sum(1 for row in rows if row[1] != "200") + server_errors

    def percentile(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None

    return {
        "protocol": protocol,
        "concurrency": concurrency,
        "requests": answered,
        "errors": failed,
        "first_error": "",
        "seconds": seconds,
        "rps": round(answered / seconds, 1),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "client": "h2load",
    }


def kserve_rows(args, version_dir: pathlib.Path, levels, body_file, use_h2load: bool, commands: list) -> list[dict]:
    """KServe's model server on the same SavedModel, V1 REST (the same JSON body), one worker."""
    port = free_port()
    command = [
        args.kserve_python,
        # Run as a script: KServe's venv has no mnist_bench, and a PYTHONPATH into this venv would
        # shadow KServe's own pins (protobuf, TensorFlow) with ours.
        str(pathlib.Path(__file__).with_name("kserve_model.py")),
        f"--model_dir={version_dir}",
        f"--http_port={port}",
        "--workers=1",
        f"--tf_intra_op_threads={TF_INTRA_OP_THREADS}",
        f"--tf_inter_op_threads={TF_INTER_OP_THREADS}",
    ]
    commands.append(shlex.join(command))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models/mnist", server, ready=b'"ready":true')
        return reference_rows("kserve", "KServe rest", port, levels, args, body_file, use_h2load, commands)
    finally:
        stop(server)


def reference_rows(server, label, port, levels, args, body_file, use_h2load: bool, commands: list) -> list[dict]:
    """A reference server's rows: REST at each concurrency, from the same load generator as ours."""
    rows = []
    for concurrency in levels:
        print(f"{label} concurrency {concurrency} ...", flush=True)
        if use_h2load:
            result = h2load("rest", port, concurrency, args, body_file, commands, server=server)
        else:
            result = loadgen("rest", f"127.0.0.1:{port}", concurrency, args, body_file, commands)
        rows.append({"server": server, **result})
    return rows


def kserve_ratios(rows: list[dict], levels) -> dict:
    """Stand-in against KServe, same run: req/s at the highest concurrency, p50 at the lowest."""
    cell = {(r["server"], r["protocol"], r["concurrency"]): r for r in rows}
    high, low = max(levels), min(levels)
    kserve_high, kserve_low = cell.get(("kserve", "rest", high)), cell.get(("kserve", "rest", low))
    lines, figures = [], {}
    for protocol in ("rest", "grpc"):
        ours_high, ours_low = cell.get(("stand-in", protocol, high)), cell.get(("stand-in", protocol, low))
        if kserve_high and ours_high and kserve_high["rps"]:
            ratio = round(ours_high["rps"] / kserve_high["rps"], 2)
            figures[f"{protocol}_rps_ratio_at_{high}"] = ratio
            lines.append(
                f"stand-in {protocol} / KServe REST at concurrency {high}: {ours_high['rps']:.0f} / "
                f"{kserve_high['rps']:.0f} req/s = {ratio:.1f}x (goal >= 5x)"
            )
        if kserve_low and ours_low and kserve_low["p50_ms"] and ours_low["p50_ms"]:
            figures[f"{protocol}_p50_ms_at_{low}"] = [ours_low["p50_ms"], kserve_low["p50_ms"]]
            lines.append(
                f"stand-in {protocol} / KServe REST p50 at concurrency {low}: {ours_low['p50_ms']:.2f} / "
                f"{kserve_low['p50_ms']:.2f} ms (goal: not above KServe's)"
            )
    return {"lines": lines, "figures": figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", default="artifacts/models/mnist")
    parser.add_argument(
        "--config-dir",
        default="services/tf-serving/config",
        help="the model server's batching_parameters.txt and monitoring.config",
    )
    parser.add_argument("--data-dir", default="artifacts/data/mnist")
    parser.add_argument("--keras-model", help="model.keras for the naive app (default: untrained build_model())")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--naive-concurrency", default="1,16")
    parser.add_argument(
        "--kserve-python", help="python of the KServe venv (make kserve-setup) for the reference rows; none: left out"
    )
    parser.add_argument("--out", default="artifacts/bench/serving.json")
    args = parser.parse_args(argv)
    if args.kserve_python and not os.access(args.kserve_python, os.X_OK):
        parser.error(f"--kserve-python {args.kserve_python}: not an executable (run `make kserve-setup`)")
    levels = [int(c) for c in args.concurrency.split(",")]
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        workdir = pathlib.Path(tmp)
        version_dir = latest_version(pathlib.Path(args.model_base_path))
        model_note = f"published version {version_dir}" if version_dir else "untrained build_model() export"
        if version_dir is None:
            version_dir = untrained_export(workdir)
        base_path = version_dir.parent

        # One test digit, as the web UI sends it.
        from mnist_common.dataset import load_split

        try:
            digit = load_split(args.data_dir, "test").as_float()[:1]
        except (FileNotFoundError, OSError):
            import numpy as np

            digit = np.random.rand(1, 28, 28).astype("float32")
        body_file = workdir / "request.json"
        body_file.write_text(json.dumps({"instances": digit.tolist()}))

        print(
            f"bench-serving: model = {model_note}; {os.cpu_count()} cores; load average {load_before[0]:.2f}",
            flush=True,
        )
        print("in-process signature calls ...", flush=True)
        in_process = in_process_rates(version_dir, seconds=3.0, batch=64)

        commands: list[str] = []
        rows = []
        grpc_port, rest_port = free_port(), free_port()
        server_command = [
            sys.executable,
            "-m",
            "tfserving_standin.cli",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            "--host=127.0.0.1",
            "--model_name=mnist",
            f"--model_base_path={base_path}",
            "--enable_batching",
            f"--batching_parameters_file={pathlib.Path(args.config_dir) / 'batching_parameters.txt'}",
            f"--monitoring_config_file={pathlib.Path(args.config_dir) / 'monitoring.config'}",
            "--log_level=WARNING",
            f"--tensorflow_intra_op_parallelism={TF_INTRA_OP_THREADS}",
            f"--tensorflow_inter_op_parallelism={TF_INTER_OP_THREADS}",
        ]
        commands.append(shlex.join(server_command))
        server = subprocess.Popen(
            server_command,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{rest_port}/v1/models/mnist", server)
            use_h2load = shutil.which("h2load") is not None
            bodies = {"rest": body_file, "grpc": workdir / "predict.grpc"}
            if use_h2load:  # loadgen.py builds its gRPC request itself, from the JSON body
                grpc_body(body_file, bodies["grpc"])
            else:
                print(
                    "note: h2load (Debian package nghttp2-client) is not installed; the load comes from "
                    "loadgen.py, a Python client that takes about as much CPU as the server it measures",
                    flush=True,
                )
            for protocol, port in (("rest", rest_port), ("grpc", grpc_port)):
                for concurrency in levels:
                    print(f"stand-in {protocol} concurrency {concurrency} ...", flush=True)
                    cpu = ServerCpu(server.pid, rest_port)
                    if use_h2load:
                        result = h2load(
                            protocol, port, concurrency, args, bodies[protocol], commands, metrics_port=rest_port
                        )
                    else:
                        result = loadgen(protocol, f"127.0.0.1:{port}", concurrency, args, body_file, commands)
                    rows.append({"server": "stand-in", **result, "server_cpu_ms_per_request": cpu.ms_per_request()})
        finally:
            stop(server)

        if args.kserve_python:
            rows += kserve_rows(args, version_dir, levels, body_file, use_h2load, commands)

        naive_port = free_port()
        naive_command = [sys.executable, "-m", "mnist_bench.naive_flask_app", "--port", str(naive_port)]
        if args.keras_model:
            naive_command += ["--keras-model", args.keras_model]
        commands.append(shlex.join(naive_command))
        naive = subprocess.Popen(
            naive_command,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{naive_port}/v1/models/mnist", naive)
            naive_levels = [int(c) for c in args.naive_concurrency.split(",")]
            rows += reference_rows(
                "naive-flask", "naive Flask app", naive_port, naive_levels, args, body_file, use_h2load, commands
            )
        finally:
            stop(naive)

    load_after = os.getloadavg()
    naive_best = max((r["rps"] for r in rows if r["server"] == "naive-flask"), default=0) or None
    print()
    print(
        f"{'server':<12} {'protocol':<8} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU ms/req':>18}"
    )
    for row in rows:
        cpu = row.get("server_cpu_ms_per_request")
        print(
            f"{row['server']:<12} {row['protocol']:<8} {row['concurrency']:>5} {row['rps']:>9.1f} "
            f"{row['p50_ms'] or 0:>8.2f} {row['p99_ms'] or 0:>8.2f} {row['errors']:>7} "
            f"{'' if cpu is None else f'{cpu:.3f}':>18}"
        )
    print(
        f"in-process serving_default, one thread: batch 1 {in_process['1']['calls_per_s']} calls/s; "
        f"batch 64 {in_process['64']['images_per_s']} images/s"
    )
    rest_64 = next(
        (r for r in rows if r["server"] == "stand-in" and r["protocol"] == "rest" and r["concurrency"] == max(levels)),
        None,
    )
    if rest_64 and naive_best:
        print(f"stand-in REST at concurrency {max(levels)} / naive Flask best: {rest_64['rps'] / naive_best:.1f}x")
    against_kserve = kserve_ratios(rows, levels)
    for line in against_kserve["lines"]:
        print(line)
    print(
        f"TensorFlow threads (intra-op / inter-op), stand-in and KServe alike: {TF_INTRA_OP_THREADS} / "
        f"{TF_INTER_OP_THREADS}"
    )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (shared cores inflate latency)")
    print("\ncommands:")
    for command in commands:
        print("  " + command)

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "model": model_note,
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "seconds_per_cell": args.seconds,
        "tensorflow_threads": {"intra_op": TF_INTRA_OP_THREADS, "inter_op": TF_INTER_OP_THREADS},
        "rows": rows,
        "in_process": in_process,
        "commands": commands,
        "rest_vs_naive": round(rest_64["rps"] / naive_best, 1) if rest_64 and naive_best else None,
        "against_kserve": against_kserve["figures"],
    }
    partial = out.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(partial, out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
