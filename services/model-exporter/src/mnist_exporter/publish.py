"""mnist-publish: hand a published version to the rollout, as the canary at --canary-percent.

The Kubeflow pipeline's last step (tools/mnist_kfp). It applies the one rollout transition every
publisher shares (mnist_common.rollout.transitions.publish: the first version becomes stable, a
later one the canary at the given share, never 100 % at once) to one of:
  --state-file + --model-config-file   the local stack's files (make pipeline-local), each written
                                       whole; `make serve` and `make promote` read the same two
  --configmap-namespace NS             the cluster's ConfigMap model-rollout in NS, read and applied
                                       whole through the Kubernetes API from inside the pod, as
                                       make deploy does after its export Job

Exit codes: 0 done (or unchanged); 2 bad flag, or a state file that does not parse.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from mnist_common import storage
from mnist_common.rollout import configmap, model_config
from mnist_common.rollout import state as rollout_state
from mnist_common.rollout.transitions import publish
from mnist_exporter.evaluate import EvaluationInputError, export_version
from mnist_exporter.kube_api import InClusterApi, KubeApiError

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
            return _publish_to_cluster(api or InClusterApi.from_pod(), args.configmap_namespace, version, args)
        current = rollout_state.read(args.state_file)
    except (EvaluationInputError, rollout_state.RolloutStateError, KubeApiError) as error:
        print(f"mnist-publish: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    new = publish(current, version, args.canary_percent)
    if new == current:
        print(f"mnist-publish: unchanged: {current.describe()} (version {version} is already served)")
        return 0
    written = rollout_state.write(args.state_file, new, current)
    text = model_config.render(model_config.server_config(written), args.model_name, args.served_base_path)
    storage.write_bytes_atomic(args.model_config_file, text.encode())
    print(f"mnist-publish: {current.describe() if current else 'no rollout yet'} -> {written.describe()}")
    return 0


def _publish_to_cluster(api: InClusterApi, namespace: str, version: int, args) -> int:
    data = api.read_config_map(namespace, configmap.NAME)
    if data is None:
        raise KubeApiError(f"no ConfigMap {configmap.NAME} in {namespace}: deploy the system first (make deploy)")
    current, _ = configmap.read_data(data, f"ConfigMap {namespace}/{configmap.NAME}")
    manifest, written = configmap.after_publish(data, version, args.canary_percent, namespace)
    api.apply(manifest, configmap.FIELD_MANAGER)
    before = current.describe() if current else "no rollout yet"
    print(f"mnist-publish: ConfigMap {namespace}/{configmap.NAME}: {before} -> {written.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
