"""One source for what the cluster trains with: kustomize/base/training.env, as the ConfigMap
training-parameters that the trainer Job and every TFJob replica read; the same values as
mnist-train's defaults, and an overlay changes only what it must."""

from __future__ import annotations

import pytest

from mnist_trainer.config import OPTIONS
from tests.deploy.renders import KUSTOMIZE, TARGETS, find

PARAMETERS = ("EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "SEED")
LOCAL_OVERRIDES = {"EPOCHS": "2"}  # overlays/local: a laptop's cluster has less to give


def training_env() -> dict[str, str]:
    lines = (KUSTOMIZE / "base" / "training.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def trainer_containers(objects: list[dict]) -> list[dict]:
    containers = []
    for obj in objects:
        if obj["kind"] == "Job" and obj["metadata"]["name"] == "mnist-train":
            containers += obj["spec"]["template"]["spec"]["containers"]
        if obj["kind"] == "TFJob":
            for replica in obj["spec"]["tfReplicaSpecs"].values():
                containers += replica["template"]["spec"]["containers"]
    return containers


def test_training_env_holds_the_trainers_defaults():
    defaults = {option.env: option.default for option in OPTIONS if option.env in PARAMETERS}
    assert set(training_env()) == set(PARAMETERS)
    for name, value in training_env().items():
        assert type(defaults[name])(value) == defaults[name], (
            f"{name}={value} but mnist-train's default is {defaults[name]}"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_every_trainer_reads_the_one_configmap_and_sets_no_parameter_itself(renders, target):
    containers = trainer_containers(renders[target])
    assert containers, f"{target} has no trainer"
    for container in containers:
        assert {"configMapRef": {"name": "training-parameters"}} in container.get("envFrom", [])
        assert not {env["name"] for env in container.get("env", [])} & set(PARAMETERS)


@pytest.mark.parametrize("target", TARGETS)
def test_the_cluster_trains_with_training_env_and_local_changes_only_epochs(renders, target):
    data = find(renders[target], "ConfigMap", "training-parameters")["data"]
    expected = {**training_env(), **(LOCAL_OVERRIDES if target.startswith(("overlays/local", "tests/local")) else {})}
    assert data == expected
