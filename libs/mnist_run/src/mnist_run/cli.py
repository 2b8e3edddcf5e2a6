"""mnist-run: the commands behind `make run`, `make loadtest` and `make bench`.

  mnist-run check-ports GRPC_PORT=8500 REST_PORT=8501 UI_PORT=8080
  mnist-run plan --data-dir D --train-dir T --model-base-path B [mnist-train flags: --epochs 5 ...]
  mnist-run announce http://localhost:8080/
  mnist-run check-slo --slo loadtest/slo.yaml <prefix>_stats.csv
  mnist-run bench --procfile Procfile --out artifacts/bench ...

Exit codes: 0 success; 1 objectives missed (check-slo) or the benchmark failed; 2 bad input
(busy port, bad flag, missing file: the message names it).
"""

from __future__ import annotations

import argparse
import sys

EXIT_INPUT_ERROR = 2


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def cmd_check_ports(args) -> int:
    from mnist_run.ports import check_ports

    ports = {}
    for name, value in args.ports:
        try:
            ports[name] = int(value)
        except ValueError:
            print(f"error: {name}={value!r} is not a port number", file=sys.stderr)
            return EXIT_INPUT_ERROR
    problems = check_ports(ports, host=args.host, command=args.command)
    for problem in problems:
        print(f"error: {problem.message}", file=sys.stderr)
    return EXIT_INPUT_ERROR if problems else 0


def cmd_warn_not_listening(args) -> int:
    from mnist_run.ports import is_listening

    for name, value in args.ports:
        if value.isdigit() and not is_listening(int(value)):
            print(f"warning: nothing listens on 127.0.0.1:{value} ({name}); is the stack running (make run)?",
                  file=sys.stderr)
    return 0  # a warning only: a load test against a stopped service is a legitimate failing run


# The trainer's settings that decide the model (its data and output dirs do not).
TRAINING_PARAMETERS = ("epochs", "batch_size", "learning_rate", "seed", "limit")


def cmd_plan(args, trainer_flags: list[str]) -> int:
    from mnist_common.dataset import DatasetError
    from mnist_trainer.config import parse_config

    from mnist_run.fingerprint import decide
    from mnist_run.inputs import finished_training, newest_published, wanted_inputs

    # The trainer's own parsing (flags, then its environment variables, then its defaults), so
    # the plan compares exactly what `mnist-train` with these flags would record.
    config = parse_config(trainer_flags).as_dict()
    parameters = {name: config[name] for name in TRAINING_PARAMETERS}
    try:
        wanted = wanted_inputs(args.data_dir, parameters)
    except (DatasetError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    plan = decide(wanted, newest_published(args.model_base_path), finished_training(args.train_dir))
    # The action alone on stdout, for make; the reason for people on stderr.
    print(f"model: {plan.action}: {plan.reason}", file=sys.stderr)
    print(plan.action)
    return 0


def cmd_announce(args) -> int:
    from mnist_run.announce import main as announce_main

    return announce_main(args.url)


def cmd_check_slo(args) -> int:
    from mnist_run import slo

    try:
        objectives = slo.load_objectives(args.slo)
        stats = slo.load_stats(args.stats)
    except slo.SloFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    passed, verdicts = slo.check(objectives, stats)
    print(f"service-level objectives ({args.slo}) for {args.stats}:")
    print(slo.report(passed, verdicts))
    return 0 if passed else 1


def cmd_bench(args) -> int:
    from mnist_run.bench import BenchOptions, run_bench

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-run", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ports = commands.add_parser("check-ports", help="exit 2 naming each port that is taken")
    ports.add_argument("ports", nargs="+", type=_assignment, metavar="VARIABLE=PORT")
    ports.add_argument("--host", default="0.0.0.0", help="address the services bind (default %(default)s)")
    ports.add_argument("--command", default="make run", help="command the message suggests (default %(default)s)")
    ports.set_defaults(run=cmd_check_ports)

    listening = commands.add_parser("warn-not-listening", help="warn about each local port nothing listens on")
    listening.add_argument("ports", nargs="+", type=_assignment, metavar="VARIABLE=PORT")
    listening.set_defaults(run=cmd_warn_not_listening)

    plan = commands.add_parser(
        "plan", help="print reuse, export or train (why: on stderr); other flags are mnist-train's")
    plan.add_argument("--data-dir", required=True)
    plan.add_argument("--train-dir", required=True)
    plan.add_argument("--model-base-path", required=True)
    plan.set_defaults(run=None)

    announce = commands.add_parser("announce", help="wait for the web UI, print its URL, report new versions")
    announce.add_argument("url")
    announce.set_defaults(run=cmd_announce)

    check_slo = commands.add_parser("check-slo", help="judge a locust *_stats.csv against the objectives")
    check_slo.add_argument("stats", help="locust's <prefix>_stats.csv")
    check_slo.add_argument("--slo", default="loadtest/slo.yaml", help="objectives file (default %(default)s)")
    check_slo.set_defaults(run=cmd_check_slo)

    bench = commands.add_parser("bench", help="measure the web UI's predict path under locust")
    bench.add_argument("--procfile", default="Procfile")
    bench.add_argument("--locustfile", default="loadtest/locustfile.py")
    bench.add_argument("--model-base-path", default="artifacts/models/mnist")
    bench.add_argument("--data-dir", default="artifacts/data/mnist")
    bench.add_argument("--model-name", default="mnist")
    bench.add_argument("--out", default="artifacts/bench", help="writes <out>/webui.json and the locust report")
    bench.add_argument("--users", type=int, default=50)
    bench.add_argument("--spawn-rate", type=float, default=25)
    bench.add_argument("--duration", default="40s", help="locust --run-time (default %(default)s)")
    bench.add_argument("--target-rps", type=float, default=330,
                       help="offered load (Poisson arrivals spread over the users); 0: no pacing (default %(default)s)")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "plan":
        return cmd_plan(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
