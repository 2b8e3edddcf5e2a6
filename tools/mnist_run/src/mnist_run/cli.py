"""mnist-run: the commands behind `make run` and `make loadtest`.

  mnist-run check-ports GRPC_PORT=8500 REST_PORT=8501 UI_PORT=8080
  mnist-run warn-not-listening GRPC_PORT=8500 ...
  mnist-run plan --data-dir D --train-dir T --model-base-path B [mnist-train flags: --epochs 5 ...]
  mnist-run announce http://localhost:8080/
  mnist-run foreground -- make-serving-command ...   (Ctrl-C stops it; make sees exit 0)

Exit codes: 0 success; 2 bad input (busy port, bad flag, missing file: the message names it).
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

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
            print(
                f"warning: nothing listens on 127.0.0.1:{value} ({name}); is the stack running (make run)?",
                file=sys.stderr,
            )
    return 0  # a warning only: a load test against a stopped service is a legitimate failing run


def cmd_plan(args, trainer_flags: list[str]) -> int:
    from mnist_common.dataset import DatasetError
    from mnist_common.pipeline import decide, newest_published, read_training_metrics
    from mnist_run.inputs import wanted_inputs
    from mnist_trainer.config import parse_config
    from mnist_trainer.train import model_parameters

    # The trainer's own parsing (flags, then its environment variables, then its defaults) and
    # its own list of what decides the model, so the plan compares exactly what `mnist-train`
    # with these flags would record, the network included: a version trained as another one (an
    # older checkout's) is retrained once rather than served on as if this code had made it.
    parameters = model_parameters(parse_config(trainer_flags))
    try:
        wanted = wanted_inputs(args.data_dir, parameters)
    except (DatasetError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    plan = decide(wanted, newest_published(args.model_base_path), read_training_metrics(args.train_dir))
    # The action alone on stdout, for make; the reason for people on stderr.
    print(f"model: {plan.action}: {plan.reason}", file=sys.stderr)
    print(plan.action)
    return 0


def cmd_announce(args) -> int:
    from mnist_run.announce import main as announce_main

    return announce_main(args.url)


def cmd_foreground(args) -> int:
    from mnist_run.foreground import run

    command = args.foreground_command[1:] if args.foreground_command[:1] == ["--"] else args.foreground_command
    if not command:
        print("error: mnist-run foreground needs a command after --", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return run(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-run", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-run')}")
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
        "plan", help="print reuse, export or train (why: on stderr); other flags are mnist-train's"
    )
    plan.add_argument("--data-dir", required=True)
    plan.add_argument("--train-dir", required=True)
    plan.add_argument("--model-base-path", required=True)
    plan.set_defaults(run=None)

    announce = commands.add_parser("announce", help="wait for the web UI, print its URL, report new versions")
    announce.add_argument("url")
    announce.set_defaults(run=cmd_announce)

    foreground = commands.add_parser(
        "foreground", help="run a server; Ctrl-C or SIGTERM stops it and counts as success (exit 0)"
    )
    foreground.add_argument("foreground_command", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    foreground.set_defaults(run=cmd_foreground)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "plan":
        return cmd_plan(args, rest)
    if args.command == "foreground":
        args.foreground_command = [*args.foreground_command, *rest]
        return args.run(args)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
