"""mnist-evaluate: a published version, loaded as TF Serving loads it, judged on the held-out test split.

The Kubeflow pipeline's evaluate step (tools/mnist_kfp). It writes three files:
    --metrics-out           the figures as JSON (test accuracy, loss, digits; the card's validation accuracy)
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

import numpy as np

from mnist_common import dataset, pipeline, storage

CLASSES = [str(digit) for digit in range(10)]
EXIT_INPUT_ERROR = 2


class EvaluationInputError(Exception):
    """A missing version, test split or bad flag; the message names it."""


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> list[list[int]]:
    """rows: the true digit; columns: the predicted one."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix.tolist()


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
        ("test accuracy (held-out)", f"{figures['test_accuracy']:.4f} on {figures['test_digits']} digits"),
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
    lines += ["", "Per-digit accuracy on the held-out test split:", "", "| digit | accuracy |", "|---|---|"]
    lines += [f"| {digit} | {accuracy:.4f} |" for digit, accuracy in figures["test_per_class_accuracy"].items()]
    return "\n".join(lines) + "\n"


def evaluate_version(data_dir: str, base: str, version: int) -> tuple[dict, list[list[int]], dict]:
    """(figures, confusion matrix, model card) of `version` under `base` on the test split."""
    if not pipeline.is_complete(base, version):
        raise EvaluationInputError(f"--model-base-path {base}: version {version} is not published there")
    card = pipeline.read_model_card(base, version)
    if card is None:
        raise EvaluationInputError(f"{pipeline.model_card_path(base, version)}: no readable model card")
    try:
        test = dataset.load_split(data_dir, "test")
    except (OSError, ValueError) as error:
        raise EvaluationInputError(f"--data-dir {data_dir}: the test split does not load ({error})") from None
    if len(test) == 0:
        raise EvaluationInputError(f"--data-dir {data_dir}: the test split is empty")

    import tensorflow as tf

    from mnist_exporter.validation import evaluate, predict_classes

    loaded = tf.saved_model.load(pipeline.version_path(base, version))
    evaluation = evaluate(loaded, test.images, test.labels)
    _, predicted = predict_classes(loaded, test.as_float())
    figures = {
        "version": version,
        "test_accuracy": round(evaluation.accuracy, 6),
        "test_loss": round(evaluation.loss, 6),
        "test_digits": evaluation.count,
        "test_per_class_accuracy": evaluation.per_class_accuracy,
        "validation_accuracy": card.get("validation", {}).get("accuracy"),
    }
    return figures, confusion_matrix(test.labels, predicted), card


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
        f"{figures['test_digits']} held-out digits (validation {figures['validation_accuracy']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
