"""The pipeline: prepare data -> train -> export (the validation gate) -> evaluate -> publish.

Training runs in one of two ways, chosen by distributed_workers: below 2 (the default 0) the
train step in a single container, as make train and the cluster's Job do; 2 or more the
train-tfjob step, which creates a kubeflow.org/v1 TFJob of that many replicas (one Chief, the
rest Workers) from the cluster's own TFJob (mnist_kfp.tfjob), waits for it, and hands the Chief's
model on; the export step reads whichever branch ran (dsl.OneOf).

A gate refusal (mnist-export exits 3, naming each failed check) fails the export step, and KFP
runs nothing that depends on it: nothing is evaluated or published. The version reaches the
rollout as the canary at canary_percent (the first version ever published becomes stable): on a
cluster the ConfigMap model-rollout in rollout_namespace, locally (make pipeline-local) the
rollout files given as rollout_state_file and model_config_file, with rollout_namespace empty.

Compiled by `python -m mnist_kfp compile` (make pipeline) to KFP's IR YAML.
"""

# No `from __future__ import annotations`: KFP reads the parameter types from the annotations.
from kfp import compiler, dsl, kubernetes
from mnist_kfp import tfjob as tfjob_source
from mnist_kfp.components import build
from mnist_kfp.parameters import Images
from mnist_kfp.steps import STEPS

NAME = "mnist"
DESCRIPTION = (
    "MNIST: prepare data, train, export through the validation gate, evaluate on held-out digits, publish as canary"
)
# Where the cluster's steps keep the MNIST download between runs (the pod's writable /tmp).
CLUSTER_CACHE_DIR = "/tmp/mnist-cache"
# Where the cluster's rollout lives (the ConfigMap model-rollout; kustomize/base/namespace.yaml).
ROLLOUT_NAMESPACE = "mnist"
# What the cluster's trainer Job asks for (kustomize/base/trainer-job.yaml).
TRAIN_RESOURCES = {"cpu_request": "1", "cpu_limit": "2", "memory_request": "2G", "memory_limit": "4G"}


def build_pipeline(images: Images, defaults: dict):
    """The pipeline function, its parameters defaulting to `defaults` (mnist_kfp.parameters)."""
    tfjob = tfjob_source.load()
    steps = build(images, tfjob)
    d = defaults

    @dsl.pipeline(name=NAME, description=DESCRIPTION)
    def mnist(
        model_base_path: str,
        data_source: str = d["data_source"],
        data_seed: int = 0,
        data_cache_dir: str = CLUSTER_CACHE_DIR,
        epochs: int = d["epochs"],
        batch_size: int = d["batch_size"],
        learning_rate: float = d["learning_rate"],
        seed: int = d["seed"],
        model_name: str = d["model_name"],
        min_accuracy: float = d["min_accuracy"],
        max_regression: float = d["max_regression"],
        keep_versions: int = d["keep_versions"],
        canary_percent: float = d["canary_percent"],
        rollout_state_file: str = "",
        model_config_file: str = "",
        served_base_path: str = "",
        rollout_namespace: str = ROLLOUT_NAMESPACE,
        distributed_workers: int = 0,
        tfjob_storage_claim: str = tfjob.storage_claim,
        tfjob_deadline_seconds: int = tfjob.deadline_seconds,
    ):
        data = steps.prepare_data(data_source=data_source, data_seed=data_seed, data_cache_dir=data_cache_dir)
        with dsl.If(distributed_workers < 2, name="single-container"):
            trained = steps.train(
                data=data.outputs["data"],
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=seed,
            )
            (
                trained.set_cpu_request(TRAIN_RESOURCES["cpu_request"])
                .set_cpu_limit(TRAIN_RESOURCES["cpu_limit"])
                .set_memory_request(TRAIN_RESOURCES["memory_request"])
                .set_memory_limit(TRAIN_RESOURCES["memory_limit"])
            )
        with dsl.Else(name="tfjob"):
            launched = steps.train_tfjob(
                data=data.outputs["data"],
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=seed,
                workers=distributed_workers,
                storage_claim=tfjob_storage_claim,
                deadline_seconds=tfjob_deadline_seconds,
            )
            # The step's pod mounts the TFJob's storage claim where the TFJob's pods do.
            kubernetes.mount_pvc(launched, pvc_name=tfjob_storage_claim, mount_path=tfjob.storage_mount_path)
        model = dsl.OneOf(trained.outputs["model"], launched.outputs["model"])
        exported = steps.export(
            data=data.outputs["data"],
            model=model,
            model_base_path=model_base_path,
            model_name=model_name,
            min_accuracy=min_accuracy,
            max_regression=max_regression,
            keep_versions=keep_versions,
            rollout_state_file=rollout_state_file,
        )
        evaluated = steps.evaluate(
            data=data.outputs["data"], export_result=exported.outputs["result"], model_base_path=model_base_path
        )
        published = steps.publish(
            export_result=exported.outputs["result"],
            canary_percent=canary_percent,
            rollout_state_file=rollout_state_file,
            model_config_file=model_config_file,
            served_base_path=served_base_path,
            rollout_namespace=rollout_namespace,
            model_name=model_name,
        ).after(evaluated)
        for name, task in (
            ("prepare-data", data),
            ("train", trained),
            ("train-tfjob", launched),
            ("export", exported),
            ("evaluate", evaluated),
            ("publish", published),
        ):
            task.set_display_name(name)
            task.set_caching_options(STEPS[name].cached)

    return mnist


def compile_to(path: str, images: Images, defaults: dict) -> None:
    compiler.Compiler().compile(build_pipeline(images, defaults), package_path=path)
