"""mnist-evaluate: a published version's held-out evaluation, handed to Kubeflow Pipelines in its formats.

The Kubeflow pipeline's evaluate step (tools/mnist_kfp). The figures are the version's own
evaluation on the held-out test split, written at export beside the model card
(assets.extra/evaluation.json, mnist_exporter.held_out: the one place it is computed, the one the
web UI's /model page shows), so the pipeline and the page report the same numbers. Only where that
evaluation is missing (a version exported before it existed), unreadable, or made on another data
set than --data-dir's does this command compute it, with held_out's own function, and it says so.
It writes three files:
    --metrics-out           the figures as JSON (test accuracy with its 95 % Wilson interval, digits,
                            mistakes, per-digit precision and recall; the card's validation accuracy)
    --confusion-matrix-out  the 10x10 confusion matrix in Kubeflow Pipelines' own format
    --model-card-out        the version's model card as Markdown, with the test figures added
and, given --executor-input (KFP's `{{$}}`), the ExecutorOutput file the KFP launcher reads after
the command: the same figures as the metadata of the output artifacts `metrics` and
`confusion_matrix`, which is what the Kubeflow UI shows (scalar metrics, confusion matrix).

The formats are KFP's: the SDK's dsl.Metrics.log_metric stores metadata[name] = value and
dsl.ClassificationMetrics.log_confusion_matrix stores metadata["confusionMatrix"] =
{"annotationSpecs": [{"displayName": c}], "rows": [{"row": [...]}]}
(kubeflow/pipelines sdk/python/kfp/dsl/types/artifact_types.py); the backend's launcher merges each
artifact's metadata from the file named by the executor input's outputs.outputFile
(backend/src/v2/component/launcher_v2.go, getExecutorOutputFile and mergeRuntimeArtifacts).

Exit codes: 0 evaluated; 2 bad flag or missing input (the message names it); 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata

from mnist_common import dataset, idx, pipeline, storage
from mnist_exporter import held_out

CLASSES = [str(digit) for digit in range(10)]
EXIT_INPUT_ERROR = 2
# Where the figures came from, as the metrics JSON and the card say it.
FROM_EXPORT = "written at export"
# What this command reads from held_out's evaluation document.
READS = ("accuracy", "interval", "digits", "correct", "mistakes_total", "per_class", "confusion_matrix")


class EvaluationInputError(Exception):
    """A missing version, test split or bad flag; the message names it."""


def kfp_confusion_matrix(matrix: list[list[int]]) -> dict:
    """KFP's ClassificationMetrics metadata["confusionMatrix"]."""
    return {"annotationSpecs": [{"displayName": name} for name in CLASSES], "rows": [{"row": row} for row in matrix]}


def export_version(export_result: str) -> int:
    """The version mnist-export's --result-file names ({"version": N, "published": ...})."""
    try:
        version = json.loads(export_result).get("version")
    except (ValueError, AttributeError):
        version = None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise EvaluationInputError(f'--export-result {export_result!r} is not {{"version": N, ...}} with N >= 1')
    return version


def card_markdown(card: dict, version: int, figures: dict) -> str:
    validation = card.get("validation", {})
    training = card.get("training", {})
    gate = card.get("gate", {})
    rows = [
        ("version", version),
        ("model", card.get("model_name", "")),
        ("created", card.get("created", "")),
        ("git commit", card.get("git_commit", "")),
        ("dataset sha256", card.get("dataset_sha256", "")),
        (
            "test accuracy (held-out)",
            f"{figures['test_accuracy']:.4f} on {figures['test_digits']} digits "
            f"(95 % Wilson interval {figures['test_accuracy_low']:.4f}-{figures['test_accuracy_high']:.4f})",
        ),
        ("test mistakes", figures["test_mistakes"]),
        ("test evaluation", figures["evaluation"]),
        ("validation accuracy (gate)", validation.get("accuracy", "")),
        ("gate: min accuracy", gate.get("min_accuracy", "")),
        ("gate: max regression", gate.get("max_regression", "")),
        ("gate: compared with version", gate.get("compared_with_version", "")),
        ("epochs", training.get("epochs", "")),
        ("batch size", training.get("batch_size", "")),
        ("learning rate", training.get("learning_rate", "")),
        ("seed", training.get("seed", "")),
    ]
    lines = [f"# Model card: {card.get('model_name', 'mnist')} version {version}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "Per digit on the held-out test split:", "", "| digit | precision | recall |", "|---|---|---|"]
    lines += [
        f"| {digit} | {_share(precision)} | {_share(figures['test_per_class_recall'][digit])} |"
        for digit, precision in figures["test_per_class_precision"].items()
    ]
    return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def version_evaluation(data_dir: str, base: str, version: int) -> tuple[dict, str]:
    """(held_out's evaluation of `version` on --data-dir's test split, where it came from).

    The one written at export when it is there and made on this data set; otherwise computed now
    with held_out's own function (never written back: a published version is not changed)."""
    try:
        digest = dataset.dataset_sha256(data_dir)
    except (dataset.DatasetError, KeyError, OSError) as error:
        raise EvaluationInputError(f"--data-dir {data_dir}: no usable data set manifest ({error})") from None
    stored = pipeline.read_evaluation(base, version)
    if stored is None:
        why = "the version has no readable evaluation from export"
    elif stored.get("schema") != held_out.EVALUATION_SCHEMA or stored.get("split") != held_out.SPLIT:
        why = f"its evaluation from export is schema {stored.get('schema')!r} on {stored.get('split')!r}"
    elif any(key not in stored for key in READS):
        why = f"its evaluation from export lacks {[key for key in READS if key not in stored]}"
    elif stored.get("dataset_sha256") != digest:
        why = "its evaluation from export was made on another data set than --data-dir's"
    else:
        return stored, FROM_EXPORT
    try:
        test = dataset.load_split(data_dir, held_out.SPLIT)
        source = str(dataset.read_manifest(data_dir).get("source", "unknown"))
    except (OSError, ValueError, idx.IdxFormatError) as error:
        raise EvaluationInputError(f"--data-dir {data_dir}: the test split does not load ({error})") from None
    if len(test) == 0:
        raise EvaluationInputError(f"--data-dir {data_dir}: the test split is empty")
    print(f"mnist-evaluate: version {version}: {why}; evaluating it now on the test split", file=sys.stderr)
    computed = held_out.evaluate_saved_model(
        pipeline.version_path(base, version), test.images, test.labels, dataset_sha256=digest, source=source
    )
    return computed, f"computed by mnist-evaluate ({why})"


def kfp_figures(evaluation: dict, card: dict, version: int, origin: str) -> dict:
    """The metrics JSON: held_out's figures under the names the pipeline reads."""
    per_class = {str(row["digit"]): row for row in evaluation["per_class"]}
    return {
        "version": version,
        "test_accuracy": evaluation["accuracy"],
        "test_accuracy_low": evaluation["interval"]["low"],
        "test_accuracy_high": evaluation["interval"]["high"],
        "test_digits": evaluation["digits"],
        "test_correct": evaluation["correct"],
        "test_mistakes": evaluation["mistakes_total"],
        "test_per_class_precision": {digit: row["precision"] for digit, row in per_class.items()},
        "test_per_class_recall": {digit: row["recall"] for digit, row in per_class.items()},
        "validation_accuracy": card.get("validation", {}).get("accuracy"),
        "evaluation": origin,
    }


def evaluate_version(data_dir: str, base: str, version: int) -> tuple[dict, list[list[int]], dict]:
    """(figures, confusion matrix, model card) of `version` under `base` on the test split."""
    if not pipeline.is_complete(base, version):
        raise EvaluationInputError(f"--model-base-path {base}: version {version} is not published there")
    card = pipeline.read_model_card(base, version)
    if card is None:
        raise EvaluationInputError(f"{pipeline.model_card_path(base, version)}: no readable model card")
    evaluation, origin = version_evaluation(data_dir, base, version)
    return kfp_figures(evaluation, card, version, origin), evaluation["confusion_matrix"], card


def executor_output(executor_input: dict, metadata_by_output: dict[str, dict]) -> tuple[str, dict]:
    """(the file the launcher reads, its ExecutorOutput): each named output artifact as the
    executor input declares it (name, uri), with the metadata given for it."""
    outputs = executor_input.get("outputs", {})
    path = outputs.get("outputFile")
    if not path:
        raise EvaluationInputError("--executor-input has no outputs.outputFile")
    artifacts = {}
    for name, metadata_values in metadata_by_output.items():
        declared = outputs.get("artifacts", {}).get(name, {}).get("artifacts", [])
        if not declared:
            raise EvaluationInputError(f"--executor-input declares no output artifact {name!r}")
        runtime = {key: declared[0][key] for key in ("name", "uri") if key in declared[0]}
        artifacts[name] = {"artifacts": [runtime | {"metadata": metadata_values}]}
    return path, {"artifacts": artifacts}


def _write(path: str, text: str) -> None:
    storage.write_bytes_atomic(path, text.encode())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-model-exporter')}")
    parser.add_argument("--data-dir", required=True, help="prepared MNIST data; its test split is evaluated")
    parser.add_argument("--model-base-path", required=True, help="where the version is published (local or gs://)")
    parser.add_argument("--export-result", required=True, help='mnist-export\'s result: {"version": N, ...}')
    parser.add_argument("--metrics-out", required=True, help="the figures as JSON")
    parser.add_argument("--confusion-matrix-out", required=True, help="the confusion matrix (KFP's format) as JSON")
    parser.add_argument("--model-card-out", required=True, help="the model card as Markdown")
    parser.add_argument("--executor-input", default="", help="KFP's executor input (JSON): write its ExecutorOutput")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        executor_input = json.loads(args.executor_input) if args.executor_input else None
        version = export_version(args.export_result)
        figures, matrix, card = evaluate_version(args.data_dir, args.model_base_path, version)
        scalars = {key: value for key, value in figures.items() if isinstance(value, int | float)}
        confusion = kfp_confusion_matrix(matrix)
        _write(args.metrics_out, json.dumps(figures, indent=2, sort_keys=True) + "\n")
        _write(args.confusion_matrix_out, json.dumps(confusion, indent=2) + "\n")
        _write(args.model_card_out, card_markdown(card, version, figures))
        if executor_input is not None:
            path, output = executor_output(
                executor_input, {"metrics": scalars, "confusion_matrix": {"confusionMatrix": confusion}}
            )
            _write(path, json.dumps(output, indent=2) + "\n")
    except ValueError as error:  # --executor-input is not JSON
        print(f"mnist-evaluate: error: --executor-input is not JSON ({error})", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except EvaluationInputError as error:
        print(f"mnist-evaluate: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    print(
        f"mnist-evaluate: version {version}: test accuracy {figures['test_accuracy']:.4f} on "
        f"{figures['test_digits']} held-out digits, {figures['evaluation']} (validation {figures['validation_accuracy']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
