"""`mnist-deploy`: render an overlay, deploy a render, show its status, remove it.

  mnist-deploy render --overlay kustomize/overlays/gke --out FILE \
      --image mnist-trainer=REGISTRY/mnist-trainer:TAG ... --set PROJECT_ID=my-project ...
  mnist-deploy deploy   --manifests FILE [--context CONTEXT] [--timeout STAGE=SECONDS ...]
      [--delete-timeout S] [--give-up-after S] [--slow-start S] [--lease-seconds S]
  mnist-deploy status   --manifests FILE [--context CONTEXT]
  mnist-deploy undeploy (--manifests FILE | --namespace NS) [--context CONTEXT] [--delete-storage]

Exit codes: 0 done, 1 a workload failed or timed out (its pod's last log lines are printed),
2 a usage or set-up problem (the message says what to do).
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from mnist_common.rollout.transitions import DEFAULT_CANARY_PERCENT
from mnist_deploy import deploy as deploying
from mnist_deploy import policy
from mnist_deploy import render as rendering
from mnist_deploy.cluster import connect
from mnist_deploy.errors import DeployError
from mnist_deploy.lock import LEASE_SECONDS
from mnist_deploy.order import STAGE_NAMES
from mnist_deploy.waiting import GIVE_UP_AFTER, SLOW_START, Poller


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name:
            raise DeployError(f"{flag} {value!r}: expected NAME=VALUE")
        pairs[name] = setting
    return pairs


def _timeouts(values: list[str]) -> dict[str, float]:
    timeouts = {}
    for stage, text in _pairs(values, "--timeout").items():
        if stage not in STAGE_NAMES:
            raise DeployError(f"--timeout {stage}={text}: no stage {stage!r} (stages: {', '.join(STAGE_NAMES)})")
        try:
            timeouts[stage] = float(text)
        except ValueError:
            timeouts[stage] = -1.0
        if timeouts[stage] <= 0:
            raise DeployError(f"--timeout {stage}={text}: expected a number of seconds above 0")
    return timeouts


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds above 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-deploy')}")
    commands = parser.add_subparsers(dest="command", required=True)

    render = commands.add_parser("render", help="kustomize an overlay into one manifest file")
    render.add_argument("--overlay", required=True, help="overlay directory, e.g. kustomize/overlays/gke")
    render.add_argument("--out", required=True, help="where to write the manifests")
    render.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME=REF",
        help="set image NAME (as written in the manifests) to REF (registry/name:tag)",
    )
    render.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a value for ${NAME} in the manifests; empty means unset",
    )
    render.add_argument("--kubectl", default="kubectl", help="kubectl binary (its kustomize builds)")

    for name, text in (
        ("deploy", "apply a render in stages and wait for each"),
        ("status", "show every object of a render and its state"),
        ("undeploy", "delete a render's objects (storage kept by default)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--manifests", required=name != "undeploy", help="the file `render` wrote")
        command.add_argument("--context", default=None, help="kubeconfig context (default: current)")
        if name == "deploy":
            command.add_argument("--poll-seconds", type=_seconds, default=5.0)
            command.add_argument(
                "--timeout",
                action="append",
                default=[],
                metavar="STAGE=SECONDS",
                help="how long a stage may take (defaults: "
                + ", ".join(f"{stage}={seconds}" for stage, seconds in deploying.STAGE_TIMEOUTS.items())
                + ")",
            )
            command.add_argument(
                "--delete-timeout",
                type=_seconds,
                default=deploying.DELETE_TIMEOUT,
                metavar="SECONDS",
                help="how long a re-run's old Job/TFJob, then its pods, may take to go (default %(default)s)",
            )
            command.add_argument(
                "--give-up-after",
                type=_seconds,
                default=GIVE_UP_AFTER,
                metavar="SECONDS",
                help="fail once a pod is stuck on ImagePullBackOff, CreateContainerConfigError, "
                "CrashLoopBackOff... this long (default %(default)s)",
            )
            command.add_argument(
                "--slow-start",
                type=_seconds,
                default=SLOW_START,
                metavar="SECONDS",
                help="report a pod still ContainerCreating after this long (default %(default)s)",
            )
            command.add_argument(
                "--rerun-jobs",
                action="store_true",
                help="run the data, training and export workloads again even where the same "
                "spec already ran (make deploy TRAIN=force)",
            )
            command.add_argument(
                "--canary-percent",
                type=float,
                default=DEFAULT_CANARY_PERCENT,
                metavar="PERCENT",
                help="the web UI share a version the export stage publishes gets as the canary "
                "(the first version becomes stable; default %(default)s)",
            )
            command.add_argument(
                "--lease-seconds",
                type=int,
                default=LEASE_SECONDS,
                metavar="SECONDS",
                help="the deploy lock's lease duration; renewed every third of it (default %(default)s)",
            )
        if name == "undeploy":
            command.add_argument(
                "--namespace", default=None, help="undeploy from this namespace's inventory, without a render"
            )
            command.add_argument(
                "--delete-storage", action="store_true", help="also delete the PersistentVolumeClaim and the namespace"
            )
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "render":
        text = rendering.render(args.overlay, _pairs(args.image, "--image"), _pairs(args.set, "--set"), args.kubectl)
        objects = rendering.parse(text)
        problems = policy.violations(objects)
        if problems:
            raise DeployError(
                f"{args.overlay} breaks the manifest rules (mnist_deploy.policy):\n  " + "\n  ".join(problems)
            )
        rendering.write_atomically(args.out, text)
        print(f"wrote {args.out} ({len(objects)} objects)")
        return 0
    if args.command == "undeploy" and not (args.manifests or args.namespace):
        raise DeployError("undeploy needs --manifests FILE or --namespace NAMESPACE")
    objects = rendering.load_manifests(args.manifests) if args.manifests else []
    timeouts = _timeouts(args.timeout) if args.command == "deploy" else {}
    cluster = connect(args.context)
    if args.command == "deploy":
        poller = Poller(interval=args.poll_seconds, give_up_after=args.give_up_after, slow_start=args.slow_start)
        deploying.deploy(
            cluster,
            objects,
            poller,
            timeouts,
            args.delete_timeout,
            lease_seconds=args.lease_seconds,
            rerun_jobs=args.rerun_jobs,
            canary_percent=args.canary_percent,
        )
    elif args.command == "status":
        for name, stage, state in deploying.status(cluster, objects):
            print(f"{stage:<9} {name:<45} {state}")
        print(deploying.how_to_open(cluster, objects))
    else:
        deploying.undeploy(cluster, objects, Poller(), args.delete_storage, namespace=args.namespace)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except DeployError as error:
        print(f"mnist-deploy {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"mnist-deploy {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
