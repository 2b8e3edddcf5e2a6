"""One export: trainer output -> staged SavedModel -> validation gate -> new version -> retention.

Nothing becomes visible in the base path until every check has passed; on any failure the
staging folder is removed and the base path is left as it was (see versions.py for how the
version appears in one step).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mnist_common import pipeline, storage
from mnist_common.dataset import DatasetError, dataset_sha256, load_split, read_manifest
from mnist_common.idx import IdxFormatError
from mnist_exporter import model_card, versions
from mnist_exporter.errors import GateFailure, InputError
from mnist_exporter.trainer_output import TrainerOutput, read_trainer_output

if TYPE_CHECKING:
    from mnist_exporter.validation import GateReport

log = logging.getLogger(__name__)

# Test hook (documented in the README): when set to a file path, the exporter writes the
# staging folder's path into that file once the export is staged and validated, then waits
# until the file is deleted before publishing. Tests use it to kill an exporter at exactly that
# moment; nothing in production sets it.
PAUSE_ENV = "MNIST_EXPORT_PAUSE_BEFORE_PUBLISH"
# Fewer validation digits than this cannot judge a model (nor fill the warmup requests).
MIN_VALIDATION_DIGITS = 100


@dataclass(frozen=True)
class ExportOptions:
    train_dir: str
    data_dir: str
    model_base_path: str
    model_name: str = "mnist"
    min_accuracy: float = 0.97
    max_regression: float = 0.005
    force: bool = False
    keep: int = 3
    republish: bool = False
    protect: tuple[int, ...] = ()  # versions retention never deletes


@dataclass
class ExportResult:
    version: int | None  # the version published, or the existing one if nothing was done
    path: str | None
    published: bool
    report: GateReport | None = None
    removed_versions: list[int] = field(default_factory=list)
    message: str = ""


def _load_validation(data_dir: str):
    try:
        split = load_split(data_dir, "validation")
        digest = dataset_sha256(data_dir)
    except FileNotFoundError as error:
        raise InputError(
            f"{error.filename or error}: validation data is missing; run 'make data' or point "
            "--data-dir / DATA_DIR at a prepared data set"
        ) from None
    except (DatasetError, IdxFormatError, KeyError, OSError) as error:
        raise InputError(
            f"{data_dir}: the validation data set is unusable ({error}); run 'make data' or "
            "point --data-dir / DATA_DIR at a prepared data set"
        ) from None
    if len(split) < MIN_VALIDATION_DIGITS:
        raise InputError(
            f"{data_dir}: only {len(split)} validation digits, fewer than the "
            f"{MIN_VALIDATION_DIGITS} needed to judge a model"
        )
    return split, digest


def _held_out_evaluation(staging: str, data_dir: str, dataset_digest: str) -> str | None:
    """Evaluate the staged version on the test split and write evaluation.json beside the card.

    For people only (no check reads it), so a data dir without a test split publishes anyway,
    saying why the version has no evaluation; returns that reason, or None when written."""
    from mnist_exporter import held_out

    try:
        split = load_split(data_dir, held_out.SPLIT)
        source = str(read_manifest(data_dir).get("source", "unknown"))
    except (FileNotFoundError, DatasetError, IdxFormatError, OSError) as error:
        reason = f"the data set has no usable {held_out.SPLIT} split ({error})"
        log.warning("no held-out evaluation written: %s", reason)
        return reason
    evaluation = held_out.evaluate_saved_model(
        staging, split.images, split.labels, dataset_sha256=dataset_digest, source=source
    )
    held_out.write_evaluation(staging, evaluation)
    log.info(
        "held-out evaluation: accuracy %.4f on %d test digits (95 %% Wilson interval %.4f-%.4f)",
        evaluation["accuracy"],
        evaluation["digits"],
        evaluation["interval"]["low"],
        evaluation["interval"]["high"],
    )
    return None


def _baseline(base: str, dataset_digest: str, split, force: bool) -> tuple[int, float] | None:
    """The newest published version and its validation accuracy on this data set.

    Read from its model card; if the card is missing, unreadable or was measured on another
    data set, the version is loaded and measured again, so figures are always comparable.
    """
    published = versions.published_versions(base)
    if not published:
        return None
    newest = published[-1]
    card = model_card.read_card(base, newest) or {}
    accuracy = (card.get("validation") or {}).get("accuracy")
    if isinstance(accuracy, (int, float)) and card.get("dataset_sha256") == dataset_digest:
        return newest, float(accuracy)
    log.info("version %d has no comparable model card; measuring it on the validation digits", newest)
    import tensorflow as tf

    from mnist_exporter.validation import evaluate

    try:
        loaded = tf.saved_model.load(versions.version_path(base, newest))
        return newest, evaluate(loaded, split.images, split.labels).accuracy
    except Exception as error:  # an unloadable published version cannot be a baseline
        if force:  # --force skips the comparison anyway
            log.warning("cannot measure version %d (%s); --force: not comparing", newest, error)
            return None
        raise GateFailure(
            [
                f"max-regression: cannot measure the newest published version {newest} "
                f"({error}); use --force to publish without comparing"
            ]
        ) from None


def _already_published(base: str, trained: TrainerOutput, dataset_digest: str) -> int | None:
    """The newest version if it holds this very training run: the same model file, trained on the
    same data with the same inputs (the pipeline's one "same training inputs?" rule)."""
    published = versions.published_versions(base)
    if not published:
        return None
    card = model_card.read_card(base, published[-1]) or {}
    same_model = (card.get("source") or {}).get("model_keras_sha256") == trained.model_sha256
    wanted = pipeline.inputs_of(trained.metrics)
    same_inputs = pipeline.same_training_inputs(
        pipeline.TrainingInputs(dataset_digest, wanted.parameters),
        card.get("dataset_sha256"),
        card.get("training") or {},
    )
    return published[-1] if same_model and same_inputs else None


def _first_missing_ancestor(path: str) -> str | None:
    """The outermost folder of `path` that does not exist yet (local paths), else None."""
    if storage.is_remote(path) or os.path.exists(path):
        return None
    path = os.path.abspath(path)
    while not os.path.exists(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def _pause_before_publish(staging: str) -> None:
    flag = os.environ.get(PAUSE_ENV)
    if not flag:
        return
    storage.write_bytes_atomic(flag, staging.encode())
    log.warning("%s is set: paused before publishing until %s is deleted", PAUSE_ENV, flag)
    while os.path.exists(flag):
        time.sleep(0.05)


def run_export(options: ExportOptions) -> ExportResult:
    base = options.model_base_path
    trained = read_trainer_output(options.train_dir)
    split, dataset_digest = _load_validation(options.data_dir)
    trained_on = trained.metrics.get("dataset_sha256")
    if trained_on and trained_on != dataset_digest:
        log.warning("the model was trained on data set %s but is validated on %s", trained_on, dataset_digest)

    if not options.republish:
        existing = _already_published(base, trained, dataset_digest)
        if existing is not None:
            return ExportResult(
                version=existing,
                path=versions.version_path(base, existing),
                published=False,
                message=f"version {existing} already holds this training run "
                f"({trained.model_path}); nothing to do (use --republish to publish it again)",
            )

    # TensorFlow is imported only now, so "nothing to do" above answers in a moment.
    from mnist_exporter import warmup
    from mnist_exporter.saved_model import export_saved_model
    from mnist_exporter.validation import run_gate

    model = trained.load_model()
    baseline = _baseline(base, dataset_digest, split, options.force)
    version = versions.next_version(base)
    created_root = _first_missing_ancestor(base)
    staging = versions.new_staging_dir(base)
    published = False
    try:
        log.info("exporting %s into staging %s", trained.model_path, staging)
        export_saved_model(model, staging)
        warmup_path = warmup.write_warmup_file(staging, warmup.build_warmup_logs(split.images, options.model_name))
        report = run_gate(
            staging,
            split.images,
            split.labels,
            min_accuracy=options.min_accuracy,
            max_regression=options.max_regression,
            baseline=baseline,
            force=options.force,
            warmup_path=warmup_path,
        )
        if not report.passed:
            raise GateFailure(report.failures)
        card = model_card.build_card(
            model_name=options.model_name,
            report=report,
            dataset_sha256=dataset_digest,
            training_metrics=trained.metrics,
            model_sha256=trained.model_sha256,
            gate_settings={
                "min_accuracy": options.min_accuracy,
                "max_regression": options.max_regression,
                "forced": options.force,
            },
            data=model_card.data_summary(read_manifest(options.data_dir)),
        )
        # After the gate, and never read by it: the evaluation cannot sway what is published.
        missing = _held_out_evaluation(staging, options.data_dir, dataset_digest)
        if missing:
            card["evaluation_missing"] = missing
        model_card.write_card(staging, card)
        _pause_before_publish(staging)
        path = versions.publish(staging, base, version)
        published = True
    finally:
        if not published:
            versions.discard_staging_dir(staging, base)
            if created_root and not any(files for _, _, files in os.walk(created_root)):
                storage.remove_tree(created_root)  # we created it only to stage in it

    # Housekeeping only after a successful publish, so a refused export changes nothing.
    leftovers = versions.clean_stale(base)
    if leftovers:
        log.info("removed leftovers of interrupted exports: %s", ", ".join(leftovers))
    removed_versions = versions.apply_retention(base, options.keep, options.protect)
    return ExportResult(
        version=version,
        path=path,
        published=True,
        report=report,
        removed_versions=removed_versions,
        message=f"published version {version} at {path}: validation accuracy "
        f"{report.evaluation.accuracy:.4f} on {report.evaluation.count} digits",
    )
