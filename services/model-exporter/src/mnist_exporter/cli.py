"""mnist-export: publish the trained model as a new, validated TF Serving model version.

Exit codes: 0 published (or this training run is already the newest version);
2 bad flag, or missing/corrupt trainer output or data (the message names it);
3 the validation gate refused the model (the message names each failed check and its figures);
1 anything else (e.g. the version folder appeared meanwhile, storage errors).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from importlib import metadata

from mnist_common import logs
from mnist_common.quiet_start import quiet_tensorflow
from mnist_common.settings import deprecation_message
from mnist_exporter.errors import (
    EXIT_GATE_FAILURE,
    EXIT_INPUT_ERROR,
    GateFailure,
    InputError,
    PublishConflict,
)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


class _OldFlagName(argparse.Action):
    """A flag's old name: still works for one release, with a warning naming the new one."""

    def __init__(self, *args, new_flag: str, **kwargs):
        self.new_flag = new_flag
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(deprecation_message(option_string, self.new_flag), file=sys.stderr, flush=True)
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="mnist-export",
        description="Export the trained Keras model as a SavedModel version for TensorFlow "
        "Serving, publishing it only if it passes the validation gate.",
        epilog="Exit codes: 0 published (or already the newest version); 2 bad flag or "
        "missing/corrupt input; 3 refused by the validation gate (nothing published); "
        "1 other errors. Every flag with an env name takes its default from that variable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-model-exporter')}")
    add = parser.add_argument
    add(
        "--train-dir",
        default=env("TRAIN_DIR", "artifacts/training"),
        help="trainer output: model.keras + metrics.json (env TRAIN_DIR; default %(default)s)",
    )
    add(
        "--data-dir",
        default=env("DATA_DIR", "artifacts/data/mnist"),
        help="prepared MNIST data; its validation split feeds the gate (env DATA_DIR; default %(default)s)",
    )
    add(
        "--model-base-path",
        default=env("MODEL_BASE_PATH", "artifacts/models/mnist"),
        help="TF Serving model base path, local or gs:// (env MODEL_BASE_PATH; default %(default)s)",
    )
    add(
        "--model-name",
        default=env("MODEL_NAME", "mnist"),
        help="model name written into the warmup requests (env MODEL_NAME; default %(default)s)",
    )
    add(
        "--min-accuracy",
        type=_fraction,
        default=env("MIN_ACCURACY", "0.97"),
        help="refuse a model below this validation accuracy (env MIN_ACCURACY; default %(default)s)",
    )
    add(
        "--max-regression",
        type=_fraction,
        default=env("MAX_REGRESSION", "0.005"),
        help="refuse a model whose accuracy is lower than the newest published version's by "
        "more than this (env MAX_REGRESSION; default %(default)s)",
    )
    add(
        "--force",
        action="store_true",
        help="publish even if worse than the newest version (the other checks still apply)",
    )
    add(
        "--keep-versions",
        dest="keep",
        type=_positive_int,
        default=env("KEEP_VERSIONS", "3"),
        help="keep the newest N versions, delete older ones (env KEEP_VERSIONS; default %(default)s)",
    )
    add(
        "--protect",
        type=_positive_int,
        action="append",
        default=[],
        metavar="VERSION",
        help="a version retention never deletes, e.g. the rollout's stable and canary (repeatable)",
    )
    add(
        "--protect-state-file",
        default="",
        metavar="ROLLOUT_FILE",
        help="never delete the versions this rollout state serves or may roll back to (stable, canary, "
        "previous stable); a missing file protects none (the Kubeflow pipeline's export)",
    )
    add(
        "--keep",
        dest="keep",
        type=_positive_int,
        action=_OldFlagName,
        new_flag="--keep-versions",
        help=argparse.SUPPRESS,
    )
    add(
        "--republish",
        action="store_true",
        help="publish even if the newest version already holds this very training run",
    )
    add(
        "--result-file",
        default="",
        help='write {"version": N, "published": true|false} there on success; in the cluster the '
        "container's termination message (/dev/termination-log), which the deploy reads",
    )
    add("--verbose", "-v", action="store_true", help="log TensorFlow's messages too")
    return parser


def write_result(path: str, version: int | None, published: bool) -> None:
    """The export's outcome for a program: the deploy reads it from the pod's status (the
    kubelet keeps the file's content as the terminated container's message). Its folder is made
    when missing, as a Kubeflow pipeline's output parameter file's may be."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"version": version, "published": published}) + "\n")


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our progress at INFO; TensorFlow's chatter (tracing notes, asset paths) only with -v.
    try:
        logs.configure("mnist-export", logging.INFO if args.verbose else logging.WARNING)
    except logs.LogFormatError as error:
        print(f"mnist-export: error: {error}", file=sys.stderr)
        return 2
    logging.getLogger("mnist_exporter").setLevel(logging.INFO)
    if not args.verbose:
        quiet_tensorflow()  # TensorFlow's start-up lines off too (unless VERBOSE=1 or a LOG_LEVEL)

    # Kubernetes stops a pod with SIGTERM: turn it into SystemExit so the exporter's cleanup
    # (removing its staging folder) runs. A publish is one rename, so it is never half done.
    previous_handler = _install_sigterm_handler()
    try:
        return _run(args)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _install_sigterm_handler():
    try:
        return signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except ValueError:  # not the main thread (main() called from a thread): leave it alone
        return None


def _rollout_versions(state_file: str) -> tuple[int, ...]:
    """The versions the rollout state in state_file may still serve (none without the file)."""
    from mnist_common.rollout import state as rollout_state

    try:
        current = rollout_state.read(state_file)
    except rollout_state.RolloutStateError as error:
        raise InputError(f"--protect-state-file: {error}") from None
    if current is None:
        return ()
    return (*current.versions, *filter(None, [current.previous_stable]))


def _run(args) -> int:
    from mnist_exporter.exporter import ExportOptions, run_export

    try:
        protected = (*args.protect, *(_rollout_versions(args.protect_state_file) if args.protect_state_file else ()))
    except InputError as error:
        print(f"mnist-export: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR

    options = ExportOptions(
        train_dir=args.train_dir,
        data_dir=args.data_dir,
        model_base_path=args.model_base_path,
        model_name=args.model_name,
        min_accuracy=args.min_accuracy,
        max_regression=args.max_regression,
        force=args.force,
        keep=args.keep,
        republish=args.republish,
        protect=tuple(sorted(set(protected))),
    )
    try:
        result = run_export(options)
    except InputError as error:
        print(f"mnist-export: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except GateFailure as error:
        base = options.model_base_path
        print(f"mnist-export: REFUSED, nothing published in {base}:", file=sys.stderr)
        for check in error.failed_checks:
            print(f"  failed check {check}", file=sys.stderr)
        return EXIT_GATE_FAILURE
    except (PublishConflict, OSError) as error:  # storage trouble: worth a retry, so exit 1
        print(f"mnist-export: error: {error}", file=sys.stderr)
        return 1
    print(result.message)
    if args.result_file:
        write_result(args.result_file, result.version, result.published)
    for note in result.report.notes if result.report else []:
        print(f"note: {note}")
    if result.removed_versions:
        print(
            f"retention (--keep-versions {options.keep}): deleted version(s) "
            + ", ".join(str(v) for v in result.removed_versions)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
