"""mnist-loadtest: judge a load test's figures.

  mnist-loadtest check-slo --slo loadtest/slo.yaml [--html report.html] <prefix>_stats.csv

Exit codes: 0 every objective met; 1 an objective missed; 2 bad input (the message names the file).
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

EXIT_INPUT_ERROR = 2


def cmd_check_slo(args) -> int:
    from mnist_loadtest import slo

    try:
        objectives = slo.load_objectives(args.slo)
        stats = slo.load_stats(args.stats)
    except slo.SloFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    passed, verdicts = slo.check(objectives, stats)
    text = slo.report(passed, verdicts)
    print(f"service-level objectives ({args.slo}) for {args.stats}:")
    print(text)
    if args.html:
        from mnist_loadtest.report_verdict import ReportError, add_verdict, verdict_block

        try:
            add_verdict(args.html, verdict_block(passed, text, args.slo))
        except ReportError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_INPUT_ERROR
    return 0 if passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-loadtest')}")
    commands = parser.add_subparsers(dest="command", required=True)
    check_slo = commands.add_parser("check-slo", help="judge a locust *_stats.csv against the objectives")
    check_slo.add_argument("stats", help="locust's <prefix>_stats.csv")
    check_slo.add_argument("--slo", default="loadtest/slo.yaml", help="objectives file (default %(default)s)")
    check_slo.add_argument("--html", help="locust's HTML report: the verdict is written into it, on top")
    check_slo.set_defaults(run=cmd_check_slo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
