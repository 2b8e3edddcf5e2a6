"""mnist-bench: the benchmarks behind `make bench-train`, `make bench-serving`, `make bench` and
`make bench-model-page`.

  mnist-bench train --data-dir D --model-dir M
  mnist-bench serving --model-base-path B --data-dir D --config-dir C ...
  mnist-bench webui --procfile Procfile --locustfile loadtest/locustfile.py ...
  mnist-bench model-page --url http://127.0.0.1:8080 [--runs N]

Each prints its figures and the commands behind them. Exit codes: 0 done (and, for train, the
targets met); 1 a target missed or the benchmark failed; 2 bad input (the message names it).
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata


def _webui(argv: list[str]) -> int:
    from mnist_bench.webui import BenchOptions, run_bench

    parser = argparse.ArgumentParser(
        prog="mnist-bench webui", description="measure the web UI's predict path under locust"
    )
    parser.add_argument("--procfile", default="Procfile")
    parser.add_argument("--locustfile", default="loadtest/locustfile.py")
    parser.add_argument("--model-base-path", default="artifacts/models/mnist")
    parser.add_argument("--data-dir", default="artifacts/data/mnist")
    parser.add_argument("--model-name", default="mnist")
    parser.add_argument("--out", default="artifacts/bench", help="writes <out>/webui.json and the locust report")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=25)
    parser.add_argument("--duration", default="40s", help="locust --run-time (default %(default)s)")
    parser.add_argument(
        "--target-rps",
        type=float,
        default=330,
        help="offered load (Poisson arrivals spread over the users); 0: no pacing (default %(default)s)",
    )
    args = parser.parse_args(argv)
    return run_bench(
        BenchOptions(
            procfile=args.procfile,
            locustfile=args.locustfile,
            model_base_path=args.model_base_path,
            data_dir=args.data_dir,
            model_name=args.model_name,
            out_dir=args.out,
            users=args.users,
            spawn_rate=args.spawn_rate,
            duration=args.duration,
            target_rps=args.target_rps,
        )
    )


def _train(argv: list[str]) -> int:
    from mnist_bench.train import main

    return main(argv)


def _serving(argv: list[str]) -> int:
    from mnist_bench.serving import main

    return main(argv)


def _model_page(argv: list[str]) -> int:
    from mnist_bench.model_page import main

    return main(argv)


BENCHMARKS = {"train": _train, "serving": _serving, "webui": _webui, "model-page": _model_page}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        print(f"mnist-bench {metadata.version('mnist-bench')}")
        return 0
    if not args or args[0] not in BENCHMARKS:
        given = repr(args[0]) if args else "nothing"
        print(
            f"usage: mnist-bench {{{'|'.join(BENCHMARKS)}}} [options]  (got {given}; "
            "'mnist-bench NAME --help' for a benchmark's options)",
            file=sys.stderr,
        )
        return 2
    return BENCHMARKS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
