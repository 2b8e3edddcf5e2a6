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

One command table over one store: local files (rollout.json, models.config, the model server on
--rest-url), or with --cluster the ConfigMap model-rollout and every TF Serving and web UI pod
(mnist_common.rollout.configmap). A change is carried out in phases (mnist_common.rollout.steps):
the versions load on every replica, then the labels move, then the web UI's split, and a retired
version is dropped only once no predict reaches it. Without a running model server the files are
written and the server reads them when it starts.
Exit codes: 0 done, 1 refused by the promote guard or a step timed out, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

import requests

from mnist_common import storage
from mnist_common.rollout import configmap, guard, local, model_config, runner, steps, transitions
from mnist_common.rollout import state as rollout_state
from mnist_common.rollout.transitions import RolloutRefused
from mnist_rollout import cluster_state, live_metrics

LOCAL_ONLY = ("init", "publish", "versions")  # the cluster's export Job publishes (mnist_deploy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-rollout')}")
    parser.add_argument("command", choices=sorted(COMMANDS))
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
    parser.add_argument(
        "--percent",
        default=f"{transitions.DEFAULT_CANARY_PERCENT:g}",
        help="canary / publish: the canary's share in percent (default %(default)s)",
    )
    parser.add_argument("--force", default="", help="promote: 1 skips the guard")
    parser.add_argument(
        "--timeout", type=float, default=runner.Limits.timeout_seconds, help="seconds each step may take"
    )
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=runner.Limits.quiet_seconds,
        help="a retired version is unloaded once no predict has reached it for this long",
    )
    return parser


class BadInput(ValueError):
    pass


class _GuardRefused(Exception):
    def __init__(self, verdict: guard.Verdict, figures):
        super().__init__("; ".join(verdict.objections))
        self.verdict, self.objections, self.figures = verdict, verdict.objections, figures


def _number(text: str, flag: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise BadInput(f"{flag}={text!r} is not a number") from None


# ---- where the rollout lives: local files, or the cluster ---------------------------------------


class Local:
    def __init__(self, args):
        missing = [flag for flag in ("state_file", "model_config_file", "model_base_path") if not getattr(args, flag)]
        if missing:
            raise BadInput(f"--{missing[0].replace('_', '-')} is needed without --cluster")
        base = args.model_base_path
        self.store = local.LocalFiles(
            args.state_file,
            args.model_config_file,
            args.model_name,
            base if storage.is_remote(base) else os.path.abspath(base),
        )
        self.server = local.LocalServer(args.rest_url, args.model_name)
        self.metrics_url = args.metrics_url
        self.figures_source = args.metrics_url

    def servers(self):
        return self.server if self.server.answers() else None

    def offline_note(self) -> str:
        return f" (the model server does not answer on {self.server.rest_url}: files only)"

    def figures(self) -> dict[int, guard.VersionFigures] | None:
        try:
            answer = requests.get(self.metrics_url, timeout=5)
            answer.raise_for_status()
        except requests.RequestException:
            return None
        return live_metrics.figures_by_version(answer.text)


class Cluster:
    def __init__(self, args, access):
        self.store = configmap.ConfigMapStore(access, args.model_name)
        self.cluster_servers = configmap.ClusterServers(access, args.model_name)
        self.figures_source = (
            f"every web UI pod's '{configmap.WEB_UI_METRICS_PORT}' port, through the API server's pod proxy"
        )

    def servers(self):
        return self.cluster_servers if self.cluster_servers.replicas() else None

    def offline_note(self) -> str:
        return " (no TF Serving pod runs: written for the next start)"

    def figures(self) -> dict[int, guard.VersionFigures] | None:
        try:
            texts = self.cluster_servers.web_ui_metrics()
        except OSError:
            return None
        return live_metrics.figures_by_version(*texts.values()) if texts else None


# ---- the commands ----------------------------------------------------------------------------


def _cmd_status(args, where, current, published) -> int:
    if args.cluster:
        print(f"rollout (cluster): published {', '.join(f'v{v}' for v in published) or 'none'}")
    print_status(current, where.figures(), where.figures_source)
    return 0


def _cmd_versions(args, where, current, published) -> int:
    kept = () if current is None else (*current.versions, *filter(None, [current.previous_stable]))
    print(" ".join(str(v) for v in sorted(set(kept))))
    return 0


def _cmd_init(args, where, current, published) -> int:
    """Before the model server starts: keep an existing state, or make the first from the newest version."""
    store = where.store
    if current is None:
        if not published:
            raise BadInput(f"no published version in {store.base_path}: run make export first")
        current = store.write_state(rollout_state.RolloutState(stable=published[-1]), None)
    missing = [v for v in current.versions if v not in published]
    if missing:
        raise BadInput(
            f"{store.state_file} serves v{', v'.join(map(str, missing))}, not published in "
            f"{store.base_path}; make canary / rollback, or delete the state file to start from the newest"
        )
    store.write_config(model_config.server_config(current))
    print(f"rollout: {current.describe()} (generation {current.generation}) -> {store.config_file}")
    return 0


def _decide_publish(args, where, current, published):
    if not published:
        raise BadInput(f"no published version in {args.model_base_path}")
    return transitions.publish(current, published[-1], _number(args.percent, "CANARY_PERCENT"))


def _decide_canary(args, where, current, published):
    version = _number(args.model_version, "VERSION", int) if args.model_version else (published[-1] if published else 0)
    return transitions.canary(current, version, _number(args.percent, "PERCENT"), published)


def _decide_promote(args, where, current, published):
    new = transitions.promote(current)
    if args.force in ("1", "true", "yes"):
        return new
    figures = where.figures()
    if figures is None:
        raise BadInput(f"no live figures from {where.figures_source} (FORCE=1 skips the guard)")
    verdict = guard.judge(
        figures.get(current.stable),
        figures.get(current.canary),
        guard.load_policy(args.policy_file),
        current.stable,
        current.canary,
    )
    if not verdict.allowed:
        raise _GuardRefused(verdict, figures)
    print_verdict(verdict, where.figures_source)
    return new


def _decide_rollback(args, where, current, published):
    return transitions.rollback(current, published)


# Commands that only report, and commands that change the state (carried out in phases).
REPORTS = {"status": _cmd_status, "versions": _cmd_versions, "init": _cmd_init}
CHANGES = {
    "publish": _decide_publish,
    "canary": _decide_canary,
    "promote": _decide_promote,
    "rollback": _decide_rollback,
}
COMMANDS = {**REPORTS, **CHANGES}


def main(argv: list[str] | None = None, cluster=None) -> int:
    """`cluster`: a configmap.KubeAccess for --cluster (tests hand in a fake; default: the kubeconfig's)."""
    args = build_parser().parse_args(argv)
    command = args.command

    def error(message: str, code: int = 2) -> int:
        print(f"rollout {command}: error: {message}", file=sys.stderr)
        return code

    try:
        if args.cluster:
            if command in LOCAL_ONLY:
                raise BadInput(f"{command} is not a cluster command (canary, promote, rollback, status)")
            where = Cluster(args, cluster or cluster_state.connect(args.context))
        else:
            where = Local(args)
        current, published = where.store.read()
        if command in REPORTS:
            return REPORTS[command](args, where, current, published)
        new = CHANGES[command](args, where, current, published)
    except (rollout_state.RolloutStateError, RolloutRefused, guard.PolicyError, BadInput) as problem:
        return error(str(problem))
    except _GuardRefused as refused:
        print("rollout promote: refused, the canary is worse than stable:", file=sys.stderr)
        for objection in refused.objections:
            print(f"  - {objection}", file=sys.stderr)
        print_verdict(refused.verdict, where.figures_source, file=sys.stderr)
        print("  (FORCE=1 promotes anyway; margins in the policy file)", file=sys.stderr)
        print_status(current, refused.figures, where.figures_source)
        return 1
    if new == current:
        print(f"rollout: unchanged: {current.describe()} (generation {current.generation})")
        return 0
    try:
        servers = where.servers()
        print(
            f"rollout {command}: {current.describe() if current else 'no state'} -> {new.describe()}"
            + ("" if servers else where.offline_note())
        )
        limits = runner.Limits(timeout_seconds=args.timeout, quiet_seconds=args.quiet_seconds)
        written = runner.run(where.store, servers, steps.plan(current, new), current, limits)
    except runner.RolloutTimeout as timeout:
        return error(str(timeout), 1)
    except (rollout_state.RolloutStateError, RolloutRefused) as problem:
        return error(str(problem))
    print(f"rollout: {written.describe()} (generation {written.generation}) in {where.store.where}")
    return 0


# ---- printing ------------------------------------------------------------------------------


def print_verdict(verdict: guard.Verdict, source: str, file=None) -> None:
    """The figures the guard compared, one line each, whichever way it decided."""
    outcome = "lets the canary through" if verdict.allowed else "refuses the promote"
    out = file or sys.stdout
    print(
        f"promote guard ({source}): stable v{verdict.stable_version} vs canary v{verdict.canary_version}, {outcome}:",
        file=out,
    )
    for line in verdict.lines():
        print(f"  {line}", file=out)


def print_status(state, figures, source: str) -> None:
    if state is None:
        print("rollout: no state yet (publish a version: make export)")
        return
    print(f"rollout: {state.describe()} (generation {state.generation}, {state.updated_at or 'not written'})")
    if figures is None:
        print(f"  no live figures: the web UI does not answer on {source}")
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
