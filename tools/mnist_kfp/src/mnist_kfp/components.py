"""The pipeline's steps as KFP container components: the project's own images and commands, nothing
installed at run time. Each step is the same command a make target or a cluster Job runs.

    step          image                  command         make target / cluster Job
    prepare-data  mnist-trainer          mnist-data      make data      / Job mnist-data
    train         mnist-trainer          mnist-train     make train     / Job mnist-train
    train-tfjob   mnist-trainer          mnist-train-tfjob  (distributed_workers >= 2) / the TFJob
    export        mnist-model-exporter   mnist-export    make export    / Job mnist-export
    evaluate      mnist-model-exporter   mnist-evaluate  (the held-out test split; KFP's Metrics)
    publish       mnist-model-exporter   mnist-publish   make canary    / the deploy's publish

mnist_kfp.steps declares, per step, the image, the command and whether KFP may reuse a cached
result; the components below are built from it and tests/pipeline checks the compiled IR against it.
"""

# No `from __future__ import annotations`: KFP reads the parameter types from the annotations.
import dataclasses

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output, OutputPath
from mnist_kfp.parameters import Images
from mnist_kfp.steps import STEPS
from mnist_kfp.tfjob import TfJobSource


@dataclasses.dataclass(frozen=True)
class Components:
    prepare_data: object
    train: object
    train_tfjob: object
    export: object
    evaluate: object
    publish: object


def build(images: Images, tfjob: TfJobSource) -> Components:
    """The components, bound to the given image references and the cluster's TFJob."""

    def image(step: str) -> str:
        return getattr(images, STEPS[step].image)

    @dsl.container_component
    def prepare_data(data_source: str, data_seed: int, data_cache_dir: str, data: Output[Dataset]):
        return dsl.ContainerSpec(
            image=image("prepare-data"),
            command=[STEPS["prepare-data"].command],
            args=["--source", data_source, "--seed", data_seed, "--cache-dir", data_cache_dir, "--out", data.path],
        )

    @dsl.container_component
    def train(
        data: Input[Dataset],
        epochs: int,
        batch_size: int,
        learning_rate: float,
        seed: int,
        model: Output[Model],
    ):
        return dsl.ContainerSpec(
            image=image("train"),
            command=[STEPS["train"].command],
            args=[
                "--data-dir",
                data.path,
                "--model-dir",
                model.path,
                "--epochs",
                epochs,
                "--batch-size",
                batch_size,
                "--learning-rate",
                learning_rate,
                "--seed",
                seed,
            ],
        )

    @dsl.container_component
    def train_tfjob(
        data: Input[Dataset],
        epochs: int,
        batch_size: int,
        learning_rate: float,
        seed: int,
        workers: int,
        storage_claim: str,
        deadline_seconds: int,
        model: Output[Model],
    ):
        # The TFJob's pods run the same trainer image; the run's id names the TFJob and its folder.
        return dsl.ContainerSpec(
            image=image("train-tfjob"),
            command=[STEPS["train-tfjob"].command],
            args=[
                "--tfjob-manifest",
                tfjob.manifest_json,
                "--image",
                image("train"),
                "--run-id",
                dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                "--workers",
                workers,
                "--storage-claim",
                storage_claim,
                "--storage-dir",
                tfjob.storage_mount_path,
                "--deadline-seconds",
                deadline_seconds,
                "--data-dir",
                data.path,
                "--model-dir",
                model.path,
                "--epochs",
                epochs,
                "--batch-size",
                batch_size,
                "--learning-rate",
                learning_rate,
                "--seed",
                seed,
            ],
        )

    @dsl.container_component
    def export(
        data: Input[Dataset],
        model: Input[Model],
        model_base_path: str,
        model_name: str,
        min_accuracy: float,
        max_regression: float,
        keep_versions: int,
        rollout_state_file: str,
        result: OutputPath(str),
    ):
        return dsl.ContainerSpec(
            image=image("export"),
            command=[STEPS["export"].command],
            args=[
                "--train-dir",
                model.path,
                "--data-dir",
                data.path,
                "--model-base-path",
                model_base_path,
                "--model-name",
                model_name,
                "--min-accuracy",
                min_accuracy,
                "--max-regression",
                max_regression,
                "--keep-versions",
                keep_versions,
                "--protect-state-file",
                rollout_state_file,
                "--result-file",
                result,
            ],
        )

    @dsl.container_component
    def evaluate(
        data: Input[Dataset],
        export_result: str,
        model_base_path: str,
        metrics: Output[Metrics],
        confusion_matrix: Output[ClassificationMetrics],
        model_card: Output[Markdown],
    ):
        return dsl.ContainerSpec(
            image=image("evaluate"),
            command=[STEPS["evaluate"].command],
            args=[
                "--data-dir",
                data.path,
                "--model-base-path",
                model_base_path,
                "--export-result",
                export_result,
                "--metrics-out",
                metrics.path,
                "--confusion-matrix-out",
                confusion_matrix.path,
                "--model-card-out",
                model_card.path,
                # KFP's executor input: the command writes the artifacts' metadata (the figures
                # the Kubeflow UI shows) to the ExecutorOutput file it names.
                "--executor-input",
                dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
            ],
        )

    @dsl.container_component
    def publish(
        export_result: str,
        canary_percent: float,
        rollout_state_file: str,
        model_config_file: str,
        served_base_path: str,
        rollout_namespace: str,
        model_name: str,
    ):
        return dsl.ContainerSpec(
            image=image("publish"),
            command=[STEPS["publish"].command],
            args=[
                "--export-result",
                export_result,
                "--canary-percent",
                canary_percent,
                "--state-file",
                rollout_state_file,
                "--model-config-file",
                model_config_file,
                "--served-base-path",
                served_base_path,
                "--configmap-namespace",
                rollout_namespace,
                "--model-name",
                model_name,
            ],
        )

    return Components(prepare_data, train, train_tfjob, export, evaluate, publish)
