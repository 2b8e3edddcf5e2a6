"""The cluster rollout against the faithful stand-in: two TF Serving replicas polling the mounted
ConfigMap's models.config (with the Deployment's --allow_version_labels_for_unavailable_models),
two web UI pods reading its rollout.json, and a KubeAccess that writes the ConfigMap's keys into
the mounted folder and reaches each pod as the API server's pod proxy would.

First the one-write canary the rollout tool made before (versions, labels and the split in one
apply): TF Serving refuses the label move (tensorflow_serving/model_servers/server_core.cc,
ServerCore::UpdateModelVersionLabelMap: an existing label moves only to an AVAILABLE version;
ServerCore::ReloadConfig returns before AddModelsViaModelConfigList), so v2 never loads, every
poll logs the refusal, and the canary's share is answered by v1 while rollout.json says v2.
Then `mnist-rollout --cluster` canary, promote (the guard summing both web UI pods) and rollback
in phases: every replica loads v2, the labels move, the split follows, and no predict fails."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from mnist_rollout import cli

from mnist_common import storage
from mnist_common.rollout import configmap
from mnist_common.rollout.state import RolloutState
from tests.tf_serving.serving_harness import MODEL_NAME, free_port, publish, start_standin

pytestmark = pytest.mark.slow

POLL_S = 0.5  # the replicas' config poll and the web UI's state poll (the cluster's is 30 s)
VENV_BIN = pathlib.Path(sys.executable).parent
PIXELS = np.full((28, 28), 0.3).tolist()
REFUSED = "PollFilesystemAndReloadConfig failed to ReloadConfig: Request to assign label to version 2"


class MountedCluster:
    """configmap.KubeAccess over local processes: the ConfigMap's keys are files in `mount` (the
    kubelet's projection), the pods are the stand-ins and web UIs started here."""

    namespace = "mnist"

    def __init__(self, mount: pathlib.Path, base_path: pathlib.Path):
        self.mount, self.base_path = mount, base_path
        self.data: dict = {}
        self.serving: dict[str, str] = {}  # pod -> REST URL
        self.web_ui: dict[str, str] = {}  # pod -> URL
        self.applies = 0

    def read_configmap(self):
        return dict(self.data)

    def apply_configmap(self, manifest):
        self.applies += 1
        self.data = dict(manifest["data"])
        for key, text in self.data.items():
            if key == configmap.MODELS_CONFIG:  # the pods' /models/mnist is this machine's base path
                text = text.replace(f'"{configmap.BASE_PATH}"', f'"{self.base_path}"')
            storage.write_bytes_atomic(str(self.mount / key), text.encode())

    def pods(self, component):
        return sorted(self.web_ui if component == configmap.WEB_UI_COMPONENT else self.serving)

    def pod_get(self, pod, port, path):
        if pod in self.web_ui:
            url = f"{self.web_ui[pod]}/{path}"
        else:
            assert port == configmap.SERVING_REST_PORT
            url = f"{self.serving[pod]}/{path}"
        answer = requests.get(url, timeout=5)
        if answer.status_code != 200:  # the kubernetes client raises for any error status
            raise OSError(f"{pod}: HTTP {answer.status_code}")
        return answer.text


class Load:
    def __init__(self, urls):
        self.answers: list[tuple[float, str, int, str | None, int | None]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(url,), daemon=True) for url in urls]

    def _run(self, url):
        session = requests.Session()
        while not self.stop.is_set():
            try:
                response = session.post(f"{url}/api/v1/predict", json={"pixels": PIXELS}, timeout=10)
                model = response.json().get("model", {}) if response.status_code == 200 else {}
                self.answers.append(
                    (time.monotonic(), url, response.status_code, model.get("label"), model.get("version"))
                )
            except requests.RequestException as error:
                self.answers.append((time.monotonic(), url, 0, str(error), None))
            self.stop.wait(0.02)

    def since(self, moment):
        return [a for a in self.answers if a[0] >= moment]


def start_web_ui(tmp_path, name, standin, rollout_file, data_dir):
    port = free_port()
    env = dict(
        os.environ,
        UI_PORT=str(port),
        SERVING_GRPC_ADDRESS=standin.grpc_target,
        SERVING_REST_URL=standin.rest_url,
        SERVING_PROTOCOL="grpc",
        DATA_DIR=data_dir,
        WEB_WORKERS="1",
        WEB_THREADS="2",
        ROLLOUT_FILE=str(rollout_file),
        ROLLOUT_POLL_SECONDS=str(POLL_S),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "python:mnist_webui.gunicorn_conf", "mnist_webui:create_app()"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=2).ok:
                return process, log, url
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail(f"web UI {name} did not become ready")


def wait_until(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} not seen within {timeout} s")


def test_one_write_is_refused_by_tf_serving_and_the_phased_rollout_succeeds(tmp_path, exported_version, data_dir):
    base = tmp_path / "models" / MODEL_NAME
    base.mkdir(parents=True)
    for version in (1, 2):
        publish(base, version, exported_version)
    mount = tmp_path / "model-rollout"
    mount.mkdir()
    cluster = MountedCluster(mount, base)
    stable = configmap.stamped(RolloutState(stable=1), None)
    cluster.apply_configmap(configmap.manifest(stable, [1, 2], "mnist"))  # what the deploy left

    replicas, web_uis = [], []
    try:
        for index in range(2):
            replica = start_standin(
                base,
                tmp_path / f"tf-serving-{index}.log",
                mount / configmap.MODELS_CONFIG,
                extra_flags=(f"--model_config_file_poll_wait_seconds={POLL_S}",),
            )
            replicas.append(replica)
            cluster.serving[f"tf-serving-{index}"] = replica.rest_url
        for index, replica in enumerate(replicas):
            web_uis.append(start_web_ui(tmp_path, f"web-ui-{index}", replica, mount / configmap.ROLLOUT_JSON, data_dir))
            cluster.web_ui[f"web-ui-{index}"] = web_uis[-1][2]
        load = Load([url for _, _, url in web_uis])
        for thread in load.threads:
            thread.start()
        try:
            wait_until(lambda: len(load.answers) > 20, "the first answers")

            # -- today's one write: versions, labels and split together ----------------------------
            canary = configmap.stamped(RolloutState(stable=1, canary=2, canary_percent=50), stable)
            cluster.apply_configmap(configmap.manifest(canary, [1, 2], "mnist"))
            written = time.monotonic()
            for replica in replicas:
                wait_until(lambda r=replica: r.log_text().count(REFUSED) >= 3, "three refused polls on every replica")
            for replica in replicas:
                states = requests.get(replica.model_url(), timeout=5).json()["model_version_status"]
                assert {int(s["version"]): s["state"] for s in states} == {1: "AVAILABLE"}  # v2 never loads
            canary_answers = [a for a in load.since(written + 2 * POLL_S) if a[3] == "canary"]
            assert canary_answers and {a[4] for a in canary_answers} == {1}  # rollout.json says v2; v1 answers

            cluster.apply_configmap(configmap.manifest(configmap.stamped(stable, canary), [1, 2], "mnist"))
            wait_until(
                lambda: len(load.answers) > 10 and all(a[3] == "stable" for a in load.answers[-10:]),
                "the split back at stable",
            )
            phased_from = time.monotonic()

            # -- the phased rollout: mnist-rollout --cluster -------------------------------------
            def rollout(*args):
                return cli.main(
                    [*args, "--cluster", "--timeout", "90", "--quiet-seconds", "1"],
                    cluster=cluster,
                )

            assert rollout("canary", "--model-version", "2", "--percent", "50") == 0
            for replica in replicas:
                label = requests.get(replica.model_url("/labels/canary"), timeout=5).json()
                assert label["model_version_status"][0]["version"] == "2"
            wait_until(
                lambda: sum(1 for a in load.since(phased_from) if a[3] == "canary" and a[4] == 2) >= 40,
                "canary v2 answers from both web UI pods",
            )
            assert rollout("promote") == 0  # the guard reads both web UI pods
            for replica in replicas:
                states = requests.get(replica.model_url(), timeout=5).json()["model_version_status"]
                assert {int(s["version"]): s["state"] for s in states}[1] == "END"  # retired once drained
            assert rollout("rollback") == 0
            back = time.monotonic()
            wait_until(lambda: any(a[4] == 1 for a in load.since(back + POLL_S)), "stable v1 answers again")
        finally:
            load.stop.set()
            for thread in load.threads:
                thread.join(timeout=15)
        phased = load.since(phased_from)
        assert len(phased) > 100
        assert [a for a in phased if a[2] != 200] == []
        assert {a[1] for a in phased if a[4] == 2} == set(cluster.web_ui.values())  # both pods reached v2
        state = json.loads((mount / configmap.ROLLOUT_JSON).read_text())
        assert (state["stable"], state["canary"]) == (1, None)
    finally:
        for process, log, _ in web_uis:
            process.terminate()
            process.wait(timeout=30)
            log.close()
        for replica in replicas:
            replica.stop()
