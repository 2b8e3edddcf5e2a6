"""The TFJob a distributed train step creates, read when the pipeline is compiled from the one the
cluster deploys: kustomize/components/distributed-training/tfjob.yaml. Nothing of it is declared
again here; the step (mnist-train-tfjob, in the trainer image) gets the manifest as JSON in its
arguments and changes only what a run decides (name, namespace, image, replicas, folders, flags).

What the pipeline itself needs from it: the storage volume's claim and mount path (the step's pod
mounts the same claim at the same path, so both see the run's data and the Chief's output), and
the run policy's activeDeadlineSeconds (the step's default wait).

Pure Python with PyYAML: readable without the Kubeflow Pipelines SDK.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import yaml
from mnist_kfp.parameters import REPO_ROOT

TFJOB_MANIFEST = REPO_ROOT / "kustomize" / "components" / "distributed-training" / "tfjob.yaml"
CONTAINER, STORAGE_VOLUME = "tensorflow", "storage"


@dataclasses.dataclass(frozen=True)
class TfJobSource:
    manifest: dict
    storage_claim: str
    storage_mount_path: str
    deadline_seconds: int

    @property
    def manifest_json(self) -> str:
        return json.dumps(self.manifest, separators=(",", ":"), sort_keys=True)


def load(path: pathlib.Path = TFJOB_MANIFEST) -> TfJobSource:
    manifest = yaml.safe_load(path.read_text())
    chief = manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]
    container = next(c for c in chief["containers"] if c["name"] == CONTAINER)
    mount = next(m for m in container["volumeMounts"] if m["name"] == STORAGE_VOLUME)
    volume = next(v for v in chief["volumes"] if v["name"] == STORAGE_VOLUME)
    return TfJobSource(
        manifest=manifest,
        storage_claim=volume["persistentVolumeClaim"]["claimName"],
        storage_mount_path=mount["mountPath"],
        deadline_seconds=int(manifest["spec"]["runPolicy"]["activeDeadlineSeconds"]),
    )
