"""mnist-publish: hand a published version to the rollout, as the canary at --canary-percent.

The Kubeflow pipeline's last step (tools/mnist_kfp). It applies the one rollout transition every
publisher shares (mnist_common.rollout.transitions.publish: the first version becomes stable, a
later one the canary at the given share, never 100 % at once) to the rollout state file, and
renders the model server's --model_config_file from it, both written whole (a reader sees the old
state or the new). `make serve` and `make promote` read the same two files.

Exit codes: 0 done (or unchanged); 2 bad flag, or a state file that does not parse.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from mnist_common import storage
from mnist_common.rollout import model_config
from mnist_common.rollout import state as rollout_state
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
    parser.add_argument("--state-file", required=True, help="the rollout state (rollout.json)")
    parser.add_argument("--model-config-file", required=True, help="the model server's --model_config_file to render")
    parser.add_argument(
        "--served-base-path", required=True, help="the base path as the model server sees it (written into the config)"
    )
    parser.add_argument("--model-name", default="mnist")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        version = export_version(args.export_result)
        current = rollout_state.read(args.state_file)
    except (EvaluationInputError, rollout_state.RolloutStateError) as error:
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


if __name__ == "__main__":
    sys.exit(main())
