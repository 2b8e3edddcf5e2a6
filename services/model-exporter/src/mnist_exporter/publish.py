"""mnist-publish: hand a published version to the rollout, as the canary at --canary-percent.

The Kubeflow pipeline's last step (tools/mnist_kfp). It applies the one rollout transition every
publisher shares (mnist_common.rollout.transitions.publish: the first version becomes stable, a
later one the canary at the given share, never 100 % at once) to one of:
  --state-file + --model-config-file   the local stack's files (make pipeline-local), each written
                                       whole; `make serve` and `make promote` read the same two
  --configmap-namespace NS             the cluster's ConfigMap model-rollout in NS, through the
                                       Kubernetes API from inside the pod, in the rollout's phases
                                       (mnist_common.rollout.runner), as make deploy does after its
                                       export Job

Exit codes: 0 done (or unchanged); 2 bad flag, a state that does not parse, or the API refused;
1 a phase did not take effect in time.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from mnist_common.kube_api import InClusterApi, KubeApiError
from mnist_common.rollout import configmap, runner, steps
from mnist_common.rollout import state as rollout_state
from mnist_common.rollout.local import LocalFiles
from mnist_common.rollout.transitions import publish
from mnist_exporter.evaluate import EvaluationInputError, export_version

EXIT_INPUT_ERROR = 2


def canary_percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(
            f"{value:g} must be above 0 and below 100: a new version is never given all traffic at once"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-model-exporter')}")
    parser.add_argument("--export-result", required=True, help='mnist-export\'s result: {"version": N, ...}')
    parser.add_argument(
        "--canary-percent", type=canary_percent, required=True, help="the new version's share (CANARY_PERCENT)"
    )
    parser.add_argument("--state-file", default="", help="the rollout state (rollout.json)")
    parser.add_argument("--model-config-file", default="", help="the model server's --model_config_file to render")
    parser.add_argument(
        "--served-base-path", default="", help="the base path as the model server sees it (written into the config)"
    )
    parser.add_argument("--configmap-namespace", default="", help="the cluster's rollout: ConfigMap model-rollout here")
    parser.add_argument("--model-name", default="mnist")
    return parser


def main(argv: list[str] | None = None, api: InClusterApi | None = None) -> int:
    """`api`: the Kubernetes API for --configmap-namespace (tests hand in one; default: the pod's)."""
    args = build_parser().parse_args(argv)
    files = [args.state_file, args.model_config_file, args.served_base_path]
    if bool(args.configmap_namespace) == any(files) or (not args.configmap_namespace and not all(files)):
        print(
            "mnist-publish: error: give either --state-file, --model-config-file and --served-base-path "
            "(the local stack) or --configmap-namespace (a cluster), not both",
            file=sys.stderr,
        )
        return EXIT_INPUT_ERROR
    try:
        version = export_version(args.export_result)
        if args.configmap_namespace:
            access = PodAccess(api or InClusterApi.from_pod(), args.configmap_namespace)
            store = configmap.ConfigMapStore(access, args.model_name)
            state, published = store.read()
            store.write_published([*published, version])
            servers = configmap.ClusterServers(access, args.model_name)
            servers = servers if servers.replicas() else None
        else:
            store = LocalFiles(args.state_file, args.model_config_file, args.model_name, args.served_base_path)
            state, servers = rollout_state.read(args.state_file), None  # the local server is not reachable from here
        new = publish(state, version, args.canary_percent)
        if new == state:
            print(f"mnist-publish: unchanged: {state.describe()} (version {version} is already served)")
            return 0
        print(f"mnist-publish: {state.describe() if state else 'no rollout yet'} -> {new.describe()} ({store.where})")
        runner.run(store, servers, steps.plan(state, new), state, runner.Limits(), say=print)
    except (EvaluationInputError, rollout_state.RolloutStateError, KubeApiError) as error:
        print(f"mnist-publish: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except runner.RolloutTimeout as error:
        print(f"mnist-publish: error: publishing v{version}: {error}", file=sys.stderr)
        return 1
    return 0


class PodAccess:
    """configmap.KubeAccess over the pod's own API access: the rollout's store and runner carry out
    the publish in the same phases as make canary and make deploy (the version loads on every TF
    Serving replica before a label names it, then the web UI's split moves)."""

    def __init__(self, api: InClusterApi, namespace: str):
        self.api, self.namespace = api, namespace

    def read_configmap(self) -> dict | None:
        return self.api.read_config_map(self.namespace, configmap.NAME)

    def apply_configmap(self, manifest: dict) -> None:
        self.api.apply(manifest, configmap.FIELD_MANAGER)

    def pods(self, component: str) -> list[str]:
        return self.api.running_pods(self.namespace, f"app.kubernetes.io/component={component}")

    def pod_get(self, pod: str, port, path: str) -> str:
        return self.api.pod_proxy_get(self.namespace, pod, port, path)


if __name__ == "__main__":
    sys.exit(main())
