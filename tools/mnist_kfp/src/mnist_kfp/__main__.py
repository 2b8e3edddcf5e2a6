"""`python -m mnist_kfp compile | local | submit`: what make pipeline, pipeline-local and
pipeline-submit run, in the Kubeflow Pipelines SDK's own venv (artifacts/kfp/venv).

Exit codes: 0 done; 2 bad input (a flag, a parameter, an image not built, no host); 1 a step failed
or the cluster refused; a gate refusal is a failed step.
"""

from __future__ import annotations

import argparse
import os
import sys

from mnist_kfp import parameters


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_kfp", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    compile_ = commands.add_parser("compile", help="compile the pipeline to KFP's IR YAML")
    compile_.add_argument("--out", required=True)
    compile_.add_argument("--image", action="append", default=[], help="NAME=REF, as make image-tags names them")
    compile_.add_argument("--default", action="append", default=[], help="make's NAME=value (MIN_ACCURACY, ...)")

    local = commands.add_parser("local", help="run the compiled pipeline here with kfp.local's DockerRunner")
    local.add_argument("--package", required=True, help="the compiled pipeline (make pipeline)")
    local.add_argument("--pipeline-root", required=True, help="where kfp.local keeps each step's outputs")
    local.add_argument("--model-base-path", required=True, help="the local stack's MODEL_BASE_PATH")
    local.add_argument("--rollout-file", required=True, help="the local stack's ROLLOUT_FILE")
    local.add_argument("--model-config-file", required=True, help="the local stack's MODEL_CONFIG_FILE")
    local.add_argument("--data-cache-dir", required=True, help="where make data keeps the npm tarball")
    local.add_argument("--set", action="append", default=[], help="parameter=value (e.g. epochs=2)")

    submit = commands.add_parser("submit", help="upload the compiled pipeline to a Kubeflow cluster and start a run")
    submit.add_argument("--host", default="", help="the KFP API (KFP_HOST)")
    submit.add_argument("--package", required=True)
    submit.add_argument("--namespace", default="", help="the Kubeflow profile namespace (KFP_NAMESPACE)")
    submit.add_argument("--experiment", default="mnist")
    submit.add_argument("--run-name", default="")
    submit.add_argument("--set", action="append", default=[], help="parameter=value (model_base_path=gs://...)")
    return parser


def _pairs(pairs: list[str], flag: str) -> None:
    bad = [pair for pair in pairs if "=" not in pair]
    if bad:
        raise parameters.ParameterError(f"{flag} {bad[0]!r}: expected NAME=value")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for flag in ("image", "default", "set"):
            _pairs(getattr(args, flag, []), f"--{flag}")
        if args.command == "compile":
            from mnist_kfp import pipeline

            images = parameters.Images.from_pairs(args.image)
            defaults = parameters.training_defaults() | parameters.make_defaults(args.default)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            pipeline.compile_to(args.out, images, defaults)
            print(f"pipeline: wrote {args.out} ({images.trainer}, {images.exporter})")
            return 0
        if args.command == "local":
            from mnist_kfp import local_run

            return local_run.main(args)
        from mnist_kfp import submit

        return submit.main(args)
    except parameters.ParameterError as error:
        print(f"pipeline {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
