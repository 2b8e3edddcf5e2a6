"""Closed-loop load generator for predict requests: REST (raw HTTP/1.1 keep-alive) or gRPC.

Runs as its own process, so its CPU use is not charged to the server it measures. Each of
--concurrency workers sends one request, waits for the answer, and sends the next; after
--warmup seconds, latencies are recorded for --duration seconds. Prints one JSON line:
{"requests": n, "errors": n, "rps": x, "p50_ms": x, "p99_ms": x, ...}.

    python loadgen.py --protocol rest --target 127.0.0.1:8501 --model mnist --concurrency 16 \
        --duration 8 --body-file request.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np


class _Stats:
    def __init__(self, measure_from: float, measure_until: float):
        self.start, self.end = measure_from, measure_until
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""

    def record(self, sent: float, ok: bool, error: str = "") -> None:
        if self.start <= sent < self.end:
            if ok:
                self.latencies.append(time.perf_counter() - sent)
            else:
                self.errors += 1
                self.first_error = self.first_error or error


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(HTTP status, keep_alive) after consuming one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip().lower()
    keep_alive = headers.get("connection") != "close" and version == "HTTP/1.1"
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()  # until the server closes
        keep_alive = False
    return int(status), keep_alive


async def _rest_worker(host, port, request_bytes, stats, stop_at):
    reader = writer = None
    while (sent := time.perf_counter()) < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request_bytes)
            status, keep_alive = await _read_response(reader)
            stats.record(sent, status == 200, f"HTTP {status}")
            if not keep_alive:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            stats.record(sent, False, repr(error))
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _grpc_worker(stub, request, stats, stop_at):
    import grpc

    while (sent := time.perf_counter()) < stop_at:
        try:
            await stub.Predict(request, timeout=30)
            stats.record(sent, True)
        except grpc.aio.AioRpcError as error:
            stats.record(sent, False, f"{error.code().name}: {error.details()}")


def _grpc_request(model: str, body: dict):
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    images = np.asarray(body["instances"], dtype=np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in images.shape]
        ),
        tensor_content=images.tobytes(),
    )
    request.inputs["images"].CopyFrom(tensor)
    return request


async def run(args) -> dict:
    body_bytes = open(args.body_file, "rb").read()
    host, port = args.target.rsplit(":", 1)
    # Built before the clock starts: the protos import TensorFlow, which takes seconds.
    grpc_request = _grpc_request(args.model, json.loads(body_bytes)) if args.protocol == "grpc" else None
    now = time.perf_counter()
    stats = _Stats(now + args.warmup, now + args.warmup + args.duration)
    stop_at = stats.end
    if args.protocol == "rest":
        request_bytes = (
            f"POST {args.path} HTTP/1.1\r\nHost: {args.target}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body_bytes)}\r\n\r\n"
        ).encode("latin-1") + body_bytes
        workers = [_rest_worker(host, int(port), request_bytes, stats, stop_at) for _ in range(args.concurrency)]
        await asyncio.gather(*workers)
    else:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        request = grpc_request
        # A few channels (HTTP/2 connections), as several client processes would open.
        channels = [grpc.aio.insecure_channel(args.target) for _ in range(min(4, args.concurrency))]
        stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in channels]
        await asyncio.gather(
            *(_grpc_worker(stubs[i % len(stubs)], request, stats, stop_at) for i in range(args.concurrency))
        )
        for channel in channels:
            await channel.close()
    latencies = np.asarray(stats.latencies) * 1000
    count = len(latencies)
    return {
        "protocol": args.protocol,
        "concurrency": args.concurrency,
        "requests": count,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "seconds": args.duration,
        "rps": round(count / args.duration, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2) if count else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 2) if count else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=["rest", "grpc"], required=True)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--path", default="/v1/models/mnist:predict", help="REST path")
    parser.add_argument("--body-file", required=True, help='JSON predict body {"instances": ...}')
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
