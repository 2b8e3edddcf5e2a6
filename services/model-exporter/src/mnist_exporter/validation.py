"""The validation gate: checks an exported SavedModel, loaded afresh from disk, before publishing.

Loading the SavedModel (not reusing the Keras object it came from) tests what TF Serving will
actually run: the traced signatures, the in-graph image decoding, the saved variables.

Checks, each reported with its figures when it fails:
  signatures             both signatures have exactly the names, dtypes and shapes of the contract
  min-accuracy           validation accuracy >= --min-accuracy
  max-regression         accuracy >= newest published version's accuracy - --max-regression
                         (skipped with --force, or when nothing is published yet)
  image-bytes-agreement  predict_image_bytes on PNG-encoded digits predicts the same classes as
                         serving_default on the same digits (catches broken in-graph decoding)
  warmup                 every stored warmup request runs against its signature
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from mnist_exporter import warmup
from mnist_exporter.saved_model import (
    CLASSES_OUTPUT,
    DEFAULT_SIGNATURE,
    EXPECTED_SIGNATURES,
    IMAGE_BYTES_INPUT,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_INPUT,
    PROBABILITIES_OUTPUT,
)

EVAL_BATCH_SIZE = 500
# Digits sent through both signatures for the agreement check: enough to catch a decoding bug,
# few enough to keep the gate quick.
AGREEMENT_SAMPLE = 200
MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float  # mean cross-entropy of the served probabilities
    count: int
    per_class_accuracy: dict[str, float]


@dataclass
class GateReport:
    evaluation: Evaluation | None = None
    image_bytes_agreement: float | None = None
    baseline_version: int | None = None
    baseline_accuracy: float | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _describe(spec) -> tuple[str, list | None]:
    shape = tf.TensorShape(spec.shape)
    return tf.as_dtype(spec.dtype).name, (shape.as_list() if shape.rank is not None else None)


def signature_problems(loaded) -> list[str]:
    """Every difference between the loaded signatures and EXPECTED_SIGNATURES, in words."""
    problems = []
    for name, (expected_inputs, expected_outputs) in EXPECTED_SIGNATURES.items():
        if name not in loaded.signatures:
            problems.append(f"signature {name!r} is missing (found {sorted(loaded.signatures)})")
            continue
        function = loaded.signatures[name]
        _, actual_inputs = function.structured_input_signature
        actual_outputs = function.structured_outputs
        for kind, expected, actual in (
            ("input", expected_inputs, actual_inputs),
            ("output", expected_outputs, actual_outputs),
        ):
            if set(actual) != set(expected):
                problems.append(f"{name}: {kind}s are {sorted(actual)}, expected {sorted(expected)}")
                continue
            for tensor_name, (dtype, shape) in expected.items():
                want = (tf.as_dtype(dtype).name, shape)
                got = _describe(actual[tensor_name])
                if got != want:
                    problems.append(
                        f"{name}: {kind} {tensor_name!r} is {got[0]} {got[1]}, expected {want[0]} {want[1]}"
                    )
    return problems


def predict_classes(loaded, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run float32 [N, 28, 28] images through serving_default in batches."""
    signature = loaded.signatures[DEFAULT_SIGNATURE]
    probabilities, classes = [], []
    for start in range(0, len(images), EVAL_BATCH_SIZE):
        outputs = signature(**{IMAGES_INPUT: tf.constant(images[start : start + EVAL_BATCH_SIZE])})
        probabilities.append(outputs[PROBABILITIES_OUTPUT].numpy())
        classes.append(outputs[CLASSES_OUTPUT].numpy())
    return np.concatenate(probabilities), np.concatenate(classes)


def evaluate(loaded, images_uint8: np.ndarray, labels: np.ndarray) -> Evaluation:
    probabilities, classes = predict_classes(loaded, images_uint8.astype(np.float32) / 255.0)
    labels = labels.astype(np.int64)
    correct = classes == labels
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(np.mean(-np.log(np.clip(picked, 1e-7, 1.0))))
    per_class = {
        str(digit): round(float(np.mean(correct[labels == digit])), 4) for digit in range(10) if np.any(labels == digit)
    }
    return Evaluation(
        accuracy=float(np.mean(correct)),
        loss=loss,
        count=int(len(labels)),
        per_class_accuracy=per_class,
    )


def image_bytes_agreement(loaded, images_uint8: np.ndarray) -> float:
    """Share of digits for which both signatures predict the same class."""
    sample = images_uint8[:AGREEMENT_SAMPLE]
    _, direct = predict_classes(loaded, sample.astype(np.float32) / 255.0)
    encoded = tf.constant([warmup.encode_png(image) for image in sample])
    via_bytes = loaded.signatures[IMAGE_BYTES_SIGNATURE](**{IMAGE_BYTES_INPUT: encoded})
    return float(np.mean(via_bytes[CLASSES_OUTPUT].numpy() == direct))


def warmup_problems(loaded, warmup_path: str) -> list[str]:
    problems = []
    try:
        logs = warmup.read_warmup_file(warmup_path)
    except Exception as error:  # a corrupt TFRecord or proto
        return [f"warmup file {warmup_path} does not parse ({error})"]
    if not logs:
        return [f"warmup file {warmup_path} holds no requests"]
    for number, log in enumerate(logs, start=1):
        request = log.predict_log.request
        signature = request.model_spec.signature_name
        try:
            outputs = warmup.run_request(loaded, request)
        except Exception as error:  # whatever the signature raises, the request fails
            problems.append(f"warmup request {number} ({signature}) fails: {error}")
            continue
        batch = next(iter(request.inputs.values())).tensor_shape.dim[0].size
        shape = outputs[PROBABILITIES_OUTPUT].shape
        if shape != (batch, 10):
            problems.append(
                f"warmup request {number} ({signature}): probabilities shape {shape}, expected ({batch}, 10)"
            )
    return problems


def run_gate(
    export_dir: str,
    images_uint8: np.ndarray,
    labels: np.ndarray,
    *,
    min_accuracy: float,
    max_regression: float,
    baseline: tuple[int, float] | None,
    force: bool,
    warmup_path: str,
) -> GateReport:
    """Load export_dir afresh and run every check; never raises for a failed check."""
    report = GateReport()
    try:
        loaded = tf.saved_model.load(export_dir)
    except Exception as error:  # whatever TF raises, the export is unusable
        report.failures.append(f"load: the exported SavedModel does not load ({error})")
        return report
    problems = signature_problems(loaded)
    if problems:
        report.failures.append("signatures: " + "; ".join(problems))
        return report  # the other checks call the signatures and would only fail confusingly

    evaluation = evaluate(loaded, images_uint8, labels)
    report.evaluation = evaluation
    if evaluation.accuracy < min_accuracy:
        report.failures.append(
            f"min-accuracy: validation accuracy {evaluation.accuracy:.4f} on {evaluation.count} "
            f"digits is below --min-accuracy {min_accuracy:.4f}"
        )

    if baseline is None:
        report.notes.append("max-regression: no published version yet, nothing to compare with")
    else:
        report.baseline_version, report.baseline_accuracy = baseline
        floor = report.baseline_accuracy - max_regression
        if evaluation.accuracy < floor:
            message = (
                f"max-regression: validation accuracy {evaluation.accuracy:.4f} is worse than "
                f"version {report.baseline_version}'s {report.baseline_accuracy:.4f} by "
                f"{report.baseline_accuracy - evaluation.accuracy:.4f}, more than --max-regression "
                f"{max_regression:.4f}"
            )
            if force:
                report.notes.append(message + " (allowed by --force)")
            else:
                report.failures.append(message + " (use --force to publish anyway)")

    agreement = image_bytes_agreement(loaded, images_uint8)
    report.image_bytes_agreement = agreement
    if agreement < MIN_AGREEMENT:
        sample = min(AGREEMENT_SAMPLE, len(images_uint8))
        report.failures.append(
            f"image-bytes-agreement: {IMAGE_BYTES_SIGNATURE} agrees with {DEFAULT_SIGNATURE} on "
            f"{agreement:.4f} of {sample} digits, below {MIN_AGREEMENT}"
        )

    problems = warmup_problems(loaded, warmup_path)
    if problems:
        report.failures.append("warmup: " + "; ".join(problems))
    return report
