"""`mnist-train-tfjob`: the pipeline's distributed train step. From inside its pod it creates a
kubeflow.org/v1 TFJob (the Training Operator's) that runs mnist-train as one Chief and N-1
Workers, waits for the job's Succeeded or Failed condition within a deadline, and copies the
Chief's output to the step's model artifact, where the export step reads it.

The TFJob is not declared here: the pipeline hands over the one the cluster deploys
(kustomize/components/distributed-training/tfjob.yaml, read when the pipeline is compiled), and
this step changes only what a run decides: its name and namespace, the image, the replica count,
the data and model folders (on the storage volume the step's pod and the TFJob's pods both
mount) and the training flags, which replace the deploy's ConfigMap.

Exit status: 0 trained; 1 the TFJob failed or missed the deadline (the message names the TFJob
and the reason); 2 bad arguments or a bad manifest.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata

from mnist_common.kube_api import InClusterApi, KubeApiError
from mnist_trainer.config import parse_config

PROG = "mnist-train-tfjob"
API_VERSION, PLURAL = "kubeflow.org/v1", "tfjobs"
# The container the Training Operator runs and sets TF_CONFIG for (it finds it by this name).
CONTAINER = "tensorflow"
STORAGE_VOLUME = "storage"
# Where a run's data and training output live on the storage volume.
RUNS_FOLDER = "pipeline-runs"
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


class TfJobFailed(Exception):
    """The TFJob ended Failed or missed the deadline; the message names it and the reason."""


class ManifestError(ValueError):
    """The TFJob manifest lacks what this step changes; the message names the field."""


def job_name(run_id: str) -> str:
    """A DNS-1123 name from the pipeline run's id: what Kubernetes accepts as an object name."""
    tail = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    return f"mnist-train-{tail}"[:63].rstrip("-")


def _containers(manifest: dict):
    specs = manifest.get("spec", {}).get("tfReplicaSpecs") or {}
    if "Chief" not in specs:
        raise ManifestError("spec.tfReplicaSpecs.Chief is missing: the Chief writes the model")
    for role, spec in specs.items():
        pod = spec["template"]["spec"]
        found = [c for c in pod.get("containers", []) if c.get("name") == CONTAINER]
        if not found:
            raise ManifestError(f"spec.tfReplicaSpecs.{role}: no container named {CONTAINER!r}")
        yield role, spec, pod, found[0]


def storage_mount_path(manifest: dict) -> str:
    """Where the TFJob's pods mount the storage volume (the Chief's container)."""
    for _, _, _, container in _containers(manifest):
        for mount in container.get("volumeMounts", []):
            if mount.get("name") == STORAGE_VOLUME:
                return mount["mountPath"]
    raise ManifestError(f"the {CONTAINER!r} container mounts no volume named {STORAGE_VOLUME!r}")


def tfjob_for(
    manifest: dict,
    *,
    name: str,
    namespace: str,
    image: str,
    workers: int,
    storage_claim: str,
    run_folder: str,
    train_args: list[str],
) -> dict:
    """The TFJob this run creates: the manifest with the run's choices; the rest as it is."""
    job = copy.deepcopy(manifest)
    job["metadata"] = {**job.get("metadata", {}), "name": name, "namespace": namespace}
    mount_path = storage_mount_path(job).rstrip("/")
    folder = f"{mount_path}/{run_folder}"
    specs = job["spec"]["tfReplicaSpecs"]
    specs["Chief"]["replicas"] = 1
    if workers > 1:
        if "Worker" not in specs:
            raise ManifestError("spec.tfReplicaSpecs.Worker is missing: it is what more workers copy")
        specs["Worker"]["replicas"] = workers - 1
    else:
        specs.pop("Worker", None)
    for _, _, pod, container in _containers(job):
        container["image"] = image
        container["args"] = [f"--data-dir={folder}/data", f"--model-dir={folder}/training", *train_args]
        # The deploy's ConfigMap of training settings: the pipeline passes them as flags instead.
        container.pop("envFrom", None)
        for volume in pod.get("volumes", []):
            if volume.get("name") == STORAGE_VOLUME and "persistentVolumeClaim" in volume:
                volume["persistentVolumeClaim"]["claimName"] = storage_claim
    return job


def final_condition(tfjob: dict) -> dict | None:
    """The Succeeded or Failed condition with status True, if the job has ended. These are the
    Training Operator's terminal JobConditionTypes (pkg/apis/kubeflow.org/v1/common_types.go)."""
    for condition in (tfjob.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return condition
    return None


def latest_condition(tfjob: dict) -> str:
    conditions = (tfjob.get("status") or {}).get("conditions") or []
    if not conditions:
        return "no condition yet"
    last = conditions[-1]
    return f"{last.get('type')} ({last.get('reason', '')}: {last.get('message', '')})"


def wait(
    api: InClusterApi,
    namespace: str,
    name: str,
    deadline_seconds: float,
    poll_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Poll the TFJob until it ends; its Succeeded condition, or TfJobFailed naming the reason.
    At the deadline the TFJob is deleted (with its pods), so it stops using the cluster."""
    ends = clock() + deadline_seconds
    while True:
        tfjob = api.get_custom(API_VERSION, namespace, PLURAL, name)
        if tfjob is None:
            raise TfJobFailed(f"TFJob {namespace}/{name} is gone: something deleted it before it ended")
        condition = final_condition(tfjob)
        if condition is not None:
            if condition["type"] == "Failed":
                raise TfJobFailed(
                    f"TFJob {namespace}/{name} failed: {condition.get('reason', 'no reason')}: "
                    f"{condition.get('message', '')}".rstrip(": ")
                )
            return condition
        if clock() >= ends:
            api.delete_custom(API_VERSION, namespace, PLURAL, name)
            raise TfJobFailed(
                f"TFJob {namespace}/{name} did not succeed or fail within {deadline_seconds:g} s "
                f"(last condition: {latest_condition(tfjob)}); deleted it"
            )
        sleep(poll_seconds)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Train as a Kubeflow TFJob and wait for it.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-trainer')}")
    parser.add_argument("--tfjob-manifest", required=True, help="the TFJob to start from, as JSON")
    parser.add_argument("--run-id", required=True, help="the pipeline run's id: names the TFJob and its folder")
    parser.add_argument("--workers", type=int, required=True, help="replicas in all: one Chief and N-1 Workers")
    parser.add_argument("--image", required=True, help="the trainer image the TFJob's pods run")
    parser.add_argument("--storage-claim", required=True, help="the PersistentVolumeClaim both pods mount")
    parser.add_argument("--storage-dir", required=True, help="where this step's pod mounts that claim")
    parser.add_argument("--data-dir", required=True, help="the prepared data (the step's input)")
    parser.add_argument("--model-dir", required=True, help="where the Chief's output goes (the step's output)")
    parser.add_argument("--deadline-seconds", type=float, required=True)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--namespace", default="", help="the TFJob's namespace (default: this pod's)")
    for flag in ("--epochs", "--batch-size", "--learning-rate", "--seed"):
        parser.add_argument(flag, required=True, help=f"mnist-train's {flag}")
    return parser


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return status


def main(argv: Sequence[str] | None = None, api: InClusterApi | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 itself, with usage, on a bad flag
    if args.workers < 2:
        return _fail(f"--workers {args.workers}: a TFJob is for 2 or more (1 trains in one container)", EXIT_BAD_INPUT)
    if args.deadline_seconds <= 0:
        return _fail(f"--deadline-seconds {args.deadline_seconds:g} must be above 0", EXIT_BAD_INPUT)
    try:
        manifest = json.loads(args.tfjob_manifest)
    except json.JSONDecodeError as error:
        return _fail(f"--tfjob-manifest is not JSON: {error}", EXIT_BAD_INPUT)
    name = job_name(args.run_id)
    run_folder = f"{RUNS_FOLDER}/{name}"
    train_args = [f"--epochs={args.epochs}", f"--batch-size={args.batch_size}"]
    train_args += [f"--learning-rate={args.learning_rate}", f"--seed={args.seed}"]
    # mnist-train's own parser checks the flags now (it exits 2 naming a bad one), not in the pods.
    parse_config(["--data-dir", args.data_dir, "--model-dir", args.model_dir, *train_args], environ={})
    try:
        api = api or InClusterApi.from_pod()
        namespace = args.namespace or api.pod_namespace()
        tfjob = tfjob_for(
            manifest,
            name=name,
            namespace=namespace,
            image=args.image,
            workers=args.workers,
            storage_claim=args.storage_claim,
            run_folder=run_folder,
            train_args=train_args,
        )
    except (ManifestError, KeyError, TypeError) as error:
        return _fail(f"--tfjob-manifest: {error}", EXIT_BAD_INPUT)
    except KubeApiError as error:
        return _fail(str(error), EXIT_FAILED)
    local_folder = os.path.join(args.storage_dir, run_folder)
    shutil.copytree(args.data_dir, os.path.join(local_folder, "data"), dirs_exist_ok=True)
    try:
        if api.get_custom(API_VERSION, namespace, PLURAL, name) is not None:
            # KFP retried this step within the same run: wait for the TFJob it already created.
            print(f"{PROG}: TFJob {namespace}/{name} exists (a retried step): waiting for it", flush=True)
        else:
            print(f"{PROG}: creating TFJob {namespace}/{name}: 1 Chief, {args.workers - 1} Worker(s)", flush=True)
            api.create_custom(API_VERSION, namespace, PLURAL, tfjob)
        wait(api, namespace, name, args.deadline_seconds, args.poll_seconds)
    except (TfJobFailed, KubeApiError) as error:
        return _fail(str(error), EXIT_FAILED)
    trained = os.path.join(local_folder, "training")
    if not os.path.isdir(trained):
        return _fail(f"TFJob {namespace}/{name} succeeded but left no {trained}: is the claim the same?", EXIT_FAILED)
    shutil.copytree(trained, args.model_dir, dirs_exist_ok=True)
    print(f"{PROG}: TFJob {namespace}/{name} succeeded; its model is in {args.model_dir}", flush=True)
    return 0
