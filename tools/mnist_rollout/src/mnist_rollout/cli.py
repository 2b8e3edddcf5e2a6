"""`python -m mnist_rollout COMMAND`: what make canary / promote / rollback / rollout-status
(and make serve, make export) run. Each command prints the state it leaves.

    init                    a state when there is none (the newest published version is stable),
                            then the model config rendered from it; an existing state is kept
    publish                 the newest published version: stable if it is the first, else the canary
    canary [--model-version N] [--percent P]
    promote [--force]       refused (exit 1, naming the figure) when the canary is worse than stable
    rollback
    status                  the state, and per version the web UI's live figures
    versions                the versions the state serves or may roll back to, for the exporter's
                            retention to keep (one line, space-separated)

With --cluster, canary / promote / rollback / status act on the cluster's ConfigMap
model-rollout instead (cluster_commands.py); the files and URLs below are then not used.
With the model server answering on --rest-url, a change is carried out step by step (steps.py);
without it, the files are written and the server reads them when it starts.
Exit codes: 0 done, 1 refused by the promote guard or a step timed out, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

import requests

from mnist_common import storage
from mnist_common.rollout import guard, model_config
from mnist_common.rollout import state as rollout_state
from mnist_rollout import cluster_commands, cluster_state, decisions, live, live_metrics, steps


def published_versions(base_path: str) -> list[int]:
    """Versions TF Serving can load: all-digit folders holding saved_model.pb."""
    if not storage.isdir(base_path):
        return []
    return sorted(
        int(name)
        for name in storage.listdir(base_path)
        if name.isascii() and name.isdigit() and storage.exists(storage.join(base_path, name, "saved_model.pb"))
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-rollout')}")
    parser.add_argument("command", choices=["init", "publish", "canary", "promote", "rollback", "status", "versions"])
    parser.add_argument("--state-file", default="", help="the rollout state (rollout.json)")
    parser.add_argument("--model-config-file", default="", help="the model server's --model_config_file to render")
    parser.add_argument("--model-base-path", default="")
    parser.add_argument("--cluster", action="store_true", help="act on the cluster's ConfigMap model-rollout")
    parser.add_argument("--context", default="", help="--cluster: the kubeconfig context (default: current)")
    parser.add_argument("--model-name", default="mnist")
    parser.add_argument("--rest-url", default="http://127.0.0.1:8501", help="the model server's REST API")
    parser.add_argument("--metrics-url", default="http://127.0.0.1:8080/metrics", help="the web UI's /metrics")
    parser.add_argument("--policy-file", help="the promote guard's margins (loadtest/rollout.yaml)")
    parser.add_argument(
        "--model-version", dest="model_version", default="", help="canary: the version (default: the newest published)"
    )
    parser.add_argument("--percent", default="10", help="canary / publish: the canary's share in percent")
    parser.add_argument("--force", default="", help="promote: 1 skips the guard")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds each step may take")
    parser.add_argument(
        "--quiet-seconds", type=float, default=3.0, help="a retired version is unloaded once unasked for this long"
    )
    return parser


class BadInput(ValueError):
    pass


def _number(text: str, flag: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise BadInput(f"{flag}={text!r} is not a number") from None


def live_figures(metrics_url: str) -> dict[int, guard.VersionFigures] | None:
    try:
        answer = requests.get(metrics_url, timeout=5)
        answer.raise_for_status()
    except requests.RequestException:
        return None
    return live_metrics.figures_by_version(answer.text)


def print_status(state, figures, metrics_url: str) -> None:
    if state is None:
        print("rollout: no state yet (publish a version: make export)")
        return
    print(f"rollout: {state.describe()} (generation {state.generation}, {state.updated_at or 'not written'})")
    if figures is None:
        print(f"  no live figures: the web UI does not answer on {metrics_url}")
        return
    print(f"  {'version':>8} {'role':>7} {'requests':>9} {'errors':>7} {'p50 ms':>7} {'p95 ms':>7} {'mean conf':>9}")
    roles = {state.stable: "stable"} | ({state.canary: "canary"} if state.canary else {})
    for version in sorted(set(figures) | set(roles)):
        f = figures.get(version)
        if f is None:
            print(f"  {'v' + str(version):>8} {roles.get(version, ''):>7} {0:>9} {'-':>7} {'-':>7} {'-':>7} {'-':>9}")
            continue

        def ms(seconds):
            return "-" if seconds is None else f"{seconds * 1000:.1f}"

        conf = "-" if f.mean_confidence is None else f"{f.mean_confidence:.4f}"
        print(
            f"  {'v' + str(version):>8} {roles.get(version, ''):>7} {f.requests:>9} {f.error_rate:>7.2%} "
            f"{ms(f.p50_seconds):>7} {ms(f.p95_seconds):>7} {conf:>9}"
        )


def main(argv: list[str] | None = None, cluster=None) -> int:
    """`cluster`: a RolloutConfigMap for --cluster (tests hand in a fake; default: the kubeconfig's)."""
    args = build_parser().parse_args(argv)
    if args.cluster:
        try:
            cluster = cluster or cluster_state.connect(args.context)
        except decisions.RolloutRefused as error:
            print(f"rollout {args.command}: error: {error}", file=sys.stderr)
            return 2
        return cluster_commands.run(args, cluster, _number, print_status)
    missing = [flag for flag in ("state_file", "model_config_file", "model_base_path") if not getattr(args, flag)]
    if missing:
        print(
            f"rollout {args.command}: error: --{missing[0].replace('_', '-')} is needed without --cluster",
            file=sys.stderr,
        )
        return 2
    base_path = (
        args.model_base_path if storage.is_remote(args.model_base_path) else os.path.abspath(args.model_base_path)
    )
    target = live.Target(
        args.state_file,
        args.model_config_file,
        args.model_name,
        base_path,
        args.rest_url,
        timeout_seconds=args.timeout,
        quiet_seconds=args.quiet_seconds,
    )
    try:
        current = rollout_state.read(args.state_file)
        published = published_versions(base_path)
        if args.command == "status":
            print_status(current, live_figures(args.metrics_url), args.metrics_url)
            return 0
        if args.command == "versions":
            kept = () if current is None else (*current.versions, *filter(None, [current.previous_stable]))
            print(" ".join(str(v) for v in sorted(set(kept))))
            return 0
        if args.command == "init":
            return _init(target, current, published)
        new = _decide(args, current, published)
    except (rollout_state.RolloutStateError, decisions.RolloutRefused, guard.PolicyError, BadInput) as error:
        print(f"rollout {args.command}: error: {error}", file=sys.stderr)
        return 2
    except _GuardRefused as refused:
        print("rollout promote: refused, the canary is worse than stable:", file=sys.stderr)
        for objection in refused.objections:
            print(f"  - {objection}", file=sys.stderr)
        print("  (FORCE=1 promotes anyway; margins in the policy file)", file=sys.stderr)
        print_status(current, refused.figures, args.metrics_url)
        return 1
    if new == current:
        print(f"rollout: unchanged: {current.describe()} (generation {current.generation})")
        return 0
    is_live = live.server_answers(target)
    print(
        f"rollout {args.command}: {current.describe() if current else 'no state'} -> {new.describe()}"
        + ("" if is_live else f" (the model server does not answer on {args.rest_url}: files only)")
    )
    try:
        written = live.run(target, steps.plan(current, new), current, is_live)
    except live.RolloutTimeout as error:
        print(f"rollout {args.command}: error: {error}", file=sys.stderr)
        return 1
    print(f"rollout: {written.describe()} (generation {written.generation})")
    return 0


class _GuardRefused(Exception):
    def __init__(self, objections, figures):
        super().__init__("; ".join(objections))
        self.objections, self.figures = objections, figures


def _decide(args, current, published):
    if args.command == "publish":
        if not published:
            raise BadInput(f"no published version in {args.model_base_path}")
        return decisions.publish(current, published[-1], _number(args.percent, "CANARY_PERCENT"))
    if args.command == "canary":
        version = (
            _number(args.model_version, "VERSION", int) if args.model_version else (published[-1] if published else 0)
        )
        return decisions.canary(current, version, _number(args.percent, "PERCENT"), published)
    if args.command == "promote":
        new = decisions.promote(current)
        if args.force not in ("1", "true", "yes"):
            figures = live_figures(args.metrics_url)
            if figures is None:
                raise BadInput(
                    f"no live figures: the web UI does not answer on {args.metrics_url} (FORCE=1 skips the guard)"
                )
            verdict = guard.judge(
                figures.get(current.stable),
                figures.get(current.canary),
                guard.load_policy(args.policy_file),
                current.stable,
                current.canary,
            )
            if not verdict.allowed:
                raise _GuardRefused(verdict.objections, figures)
        return new
    return decisions.rollback(current, published)


def _init(target, current, published) -> int:
    """Before the model server starts: keep an existing state, or make the first from the newest version."""
    if current is None:
        if not published:
            print(
                f"rollout init: error: no published version in {target.base_path}: run make export first",
                file=sys.stderr,
            )
            return 2
        current = rollout_state.write(target.state_file, rollout_state.RolloutState(stable=published[-1]), None)
    missing = [v for v in current.versions if v not in published]
    if missing:
        print(
            f"rollout init: error: {target.state_file} serves v{', v'.join(map(str, missing))}, not published in "
            f"{target.base_path}; make canary / rollback, or delete the state file to start from the newest",
            file=sys.stderr,
        )
        return 2
    live.write_config(target, model_config.server_config(current))
    print(f"rollout: {current.describe()} (generation {current.generation}) -> {target.config_file}")
    return 0
