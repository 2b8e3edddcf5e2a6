"""canary, promote, rollback and status against a cluster (`--cluster`): the same decisions as on
the local stack, carried out on the ConfigMap model-rollout (cluster_state.py). Publishing is the
deploy's export stage there (mnist_deploy.publish). Each command prints the state it leaves;
exit codes as cli.py's."""

from __future__ import annotations

import sys

from mnist_common.rollout import guard
from mnist_common.rollout.state import RolloutStateError
from mnist_rollout import cluster_state, decisions, live_metrics

SOURCE = f"the web UI's /metrics through the API server's service proxy ({'/'.join(cluster_state.WEB_UI_METRICS)})"


def _figures(cluster):
    text = cluster.web_ui_metrics()
    return None if text is None else live_metrics.figures_by_version(text)


def run(args, cluster: cluster_state.RolloutConfigMap, number, print_status) -> int:
    """`number(text, flag, kind)` parses a flag (raising cli.BadInput); `print_status` is cli's."""
    try:
        current, published = cluster_state.load(cluster)
        if args.command == "status":
            print(f"rollout (cluster): published {', '.join(f'v{v}' for v in published) or 'none'}")
            print_status(current, _figures(cluster), SOURCE)
            return 0
        new = _decide(args, current, published, cluster, number)
    except (RolloutStateError, decisions.RolloutRefused, guard.PolicyError, ValueError) as error:
        print(f"rollout {args.command}: error: {error}", file=sys.stderr)
        return 2
    except _Refused as refused:
        print("rollout promote: refused, the canary is worse than stable:", file=sys.stderr)
        for objection in refused.objections:
            print(f"  - {objection}", file=sys.stderr)
        print("  (FORCE=1 promotes anyway; margins in the policy file)", file=sys.stderr)
        return 1
    if new == current:
        print(f"rollout: unchanged: {current.describe()} (generation {current.generation})")
        return 0
    try:
        written = cluster_state.write(cluster, new, current, published)
    except decisions.RolloutRefused as error:
        print(f"rollout {args.command}: error: {error}", file=sys.stderr)
        return 2
    print(
        f"rollout {args.command}: {current.describe() if current else 'no state'} -> {written.describe()} "
        f"(ConfigMap model-rollout, generation {written.generation}; TF Serving re-reads it within its poll)"
    )
    return 0


class _Refused(Exception):
    def __init__(self, objections):
        super().__init__("; ".join(objections))
        self.objections = objections


def _decide(args, current, published, cluster, number):
    if args.command == "canary":
        version = (
            number(args.model_version, "VERSION", int) if args.model_version else (published[-1] if published else 0)
        )
        return decisions.canary(current, version, number(args.percent, "PERCENT"), published)
    if args.command == "promote":
        new = decisions.promote(current)
        if args.force not in ("1", "true", "yes"):
            figures = _figures(cluster)
            if figures is None:
                raise decisions.RolloutRefused(f"no live figures from {SOURCE} (FORCE=1 skips the guard)")
            verdict = guard.judge(
                figures.get(current.stable),
                figures.get(current.canary),
                guard.load_policy(args.policy_file),
                current.stable,
                current.canary,
            )
            if not verdict.allowed:
                raise _Refused(verdict.objections)
        return new
    if args.command == "rollback":
        return decisions.rollback(current, published)
    raise decisions.RolloutRefused(f"{args.command} is not a cluster command (canary, promote, rollback, status)")
