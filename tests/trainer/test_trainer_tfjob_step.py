"""mnist-train-tfjob (the pipeline's distributed train step) against a loopback imitation of the
Kubernetes API server and the Training Operator.

The imitation follows the real ones:
- the paths of a namespaced custom resource, /apis/kubeflow.org/v1/namespaces/NS/tfjobs[/NAME]
  (POST creates, GET reads, DELETE with DeleteOptions deletes), as the API server serves every
  CRD's kind (k8s.io/apiextensions-apiserver; kubeflow/training-operator v1.8.1 registers TFJob
  in pkg/apis/kubeflow.org/v1, tfjob_types.go, plural "tfjobs");
- the TFJob's status.conditions as training-operator v1.8.1 writes them: the JobConditionTypes
  Created, Running, Restarting, Succeeded, Failed, Suspended (pkg/apis/kubeflow.org/v1/
  common_types.go), the reasons TFJobCreated / TFJobRunning / TFJobSucceeded / TFJobFailed
  (pkg/controller.v1/tensorflow/tfjob_controller.go, UpdateJobStatus, with
  commonutil.NewReason(kind, reason)), and on success the Running condition kept with status
  "False" (pkg/util/status.go, updateJobConditions), so the last condition is not the one to read.
The Chief's work is imitated too: on success the fake writes the model where the Chief's
--model-dir points, through the same volume the step's pod mounts.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml

from mnist_common.kube_api import InClusterApi
from mnist_trainer import tfjob_run
from tests.support.paths import KUSTOMIZE

NAMESPACE = "kubeflow-user"
TFJOB_YAML = KUSTOMIZE / "components" / "distributed-training" / "tfjob.yaml"
RUN_ID = "4F1C2a9e-77b0-4d3c-9a51-0c3d2b1e8f00"
NAME = "mnist-train-4f1c2a9e-77b0-4d3c-9a51-0c3d2b1e8f00"


def condition(kind: str, reason: str, message: str, status: str = "True") -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message}


CREATED = condition("Created", "TFJobCreated", f"TFJob {NAMESPACE}/{NAME} is created.")
RUNNING = condition("Running", "TFJobRunning", f"TFJob {NAMESPACE}/{NAME} is running.")
SUCCEEDED = [
    CREATED,
    {**RUNNING, "status": "False"},
    condition("Succeeded", "TFJobSucceeded", f"TFJob {NAMESPACE}/{NAME} successfully completed."),
]
FAILED = [
    CREATED,
    {**RUNNING, "status": "False"},
    condition("Failed", "TFJobFailed", f"TFJob {NAMESPACE}/{NAME} has failed because 1 Worker replica(s) failed."),
]


class FakeCluster:
    """The API server's tfjobs resource, and the operator moving a TFJob through its conditions:
    each GET shows the next list of conditions in `script` (the last one stays)."""

    def __init__(self, script: list[list[dict]], storage, mount_path: str):
        self.script, self.storage, self.mount_path = script, storage, mount_path
        self.requests, self.objects, self.reads = [], {}, 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def _route(self):
                prefix = f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/tfjobs"
                if not self.path.startswith(prefix):
                    return None
                return self.path[len(prefix) :].lstrip("/")

            def do_POST(self):
                body = self._body()
                fake.requests.append(("POST", self.path, self.headers.get("Authorization"), body))
                if self._route() != "":
                    return self._answer(404, {"kind": "Status", "code": 404})
                name = body["metadata"]["name"]
                if name in fake.objects:
                    return self._answer(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
                fake.objects[name] = body
                self._answer(201, body)

            def do_GET(self):
                fake.requests.append(("GET", self.path, self.headers.get("Authorization"), None))
                name = self._route()
                if name not in fake.objects:
                    return self._answer(404, {"kind": "Status", "reason": "NotFound", "code": 404})
                conditions = fake.script[min(fake.reads, len(fake.script) - 1)]
                fake.reads += 1
                if any(c["type"] == "Succeeded" and c["status"] == "True" for c in conditions):
                    fake.chief_writes_its_model(fake.objects[name])
                self._answer(200, {**fake.objects[name], "status": {"conditions": conditions}})

            def do_DELETE(self):
                fake.requests.append(("DELETE", self.path, self.headers.get("Authorization"), self._body()))
                name = self._route()
                if fake.objects.pop(name, None) is None:
                    return self._answer(404, {"kind": "Status", "reason": "NotFound", "code": 404})
                self._answer(200, {"kind": "Status", "status": "Success"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.api = InClusterApi(f"http://127.0.0.1:{self.server.server_address[1]}", token="pod-token", ca_file=False)

    def chief_writes_its_model(self, tfjob: dict):
        chief = tfjob["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
        model_dir = next(arg.split("=", 1)[1] for arg in chief["args"] if arg.startswith("--model-dir="))
        data_dir = next(arg.split("=", 1)[1] for arg in chief["args"] if arg.startswith("--data-dir="))
        local = self.storage / model_dir.removeprefix(self.mount_path).lstrip("/")
        # The Chief read the data the step copied onto the shared volume.
        assert (self.storage / data_dir.removeprefix(self.mount_path).lstrip("/") / "manifest.json").exists()
        local.mkdir(parents=True, exist_ok=True)
        (local / "model.keras").write_bytes(b"keras")
        (local / "metrics.json").write_text('{"val_accuracy": 0.99}')

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def manifest() -> dict:
    return yaml.safe_load(TFJOB_YAML.read_text())


def run_step(fake, manifest, tmp_path, *extra, workers=3, deadline=30.0, manifest_text=None):
    data = tmp_path / "inputs" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "manifest.json").write_text("{}")
    argv = [
        "--tfjob-manifest",
        json.dumps(manifest) if manifest_text is None else manifest_text,
        "--run-id",
        RUN_ID,
        "--workers",
        str(workers),
        "--image",
        "registry.test/mnist-trainer:c-1",
        "--storage-claim",
        "pipeline-storage",
        "--storage-dir",
        str(fake.storage),
        "--data-dir",
        str(data),
        "--model-dir",
        str(tmp_path / "outputs" / "model"),
        "--deadline-seconds",
        str(deadline),
        "--poll-seconds",
        "0.01",
        "--namespace",
        NAMESPACE,
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--learning-rate",
        "0.001",
        "--seed",
        "7",
        *extra,
    ]
    return tfjob_run.main(argv, api=fake.api)


@pytest.fixture
def cluster(request, tmp_path, manifest):
    fakes = []

    def start(script):
        fake = FakeCluster(script, tmp_path / "storage", tfjob_run.storage_mount_path(manifest))
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        fake.close()


def test_a_succeeded_tfjob_hands_the_chiefs_model_to_the_step_output(cluster, manifest, tmp_path, capsys):
    fake = cluster([[], [CREATED], [CREATED, RUNNING], SUCCEEDED])
    assert run_step(fake, manifest, tmp_path) == 0
    assert (tmp_path / "outputs" / "model" / "model.keras").read_bytes() == b"keras"
    assert "succeeded" in capsys.readouterr().out

    assert fake.requests[0][:2] == ("GET", f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/tfjobs/{NAME}")
    method, path, auth, created = fake.requests[1]
    assert (method, path, auth) == ("POST", f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/tfjobs", "Bearer pod-token")
    assert (created["apiVersion"], created["kind"]) == ("kubeflow.org/v1", "TFJob")
    assert (created["metadata"]["name"], created["metadata"]["namespace"]) == (NAME, NAMESPACE)
    specs = created["spec"]["tfReplicaSpecs"]
    assert (specs["Chief"]["replicas"], specs["Worker"]["replicas"]) == (1, 2)
    folder = f"{tfjob_run.storage_mount_path(manifest)}/pipeline-runs/{NAME}"
    for role in ("Chief", "Worker"):
        pod = specs[role]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == "registry.test/mnist-trainer:c-1" and "envFrom" not in container
        assert container["args"] == [
            f"--data-dir={folder}/data",
            f"--model-dir={folder}/training",
            "--epochs=2",
            "--batch-size=64",
            "--learning-rate=0.001",
            "--seed=7",
        ]
        claim = next(v for v in pod["volumes"] if v["name"] == "storage")["persistentVolumeClaim"]["claimName"]
        assert claim == "pipeline-storage"
    # Everything else is the cluster's TFJob as kustomize renders it: restart and run policies,
    # security contexts, resources, the operator's port.
    assert created["spec"]["runPolicy"] == manifest["spec"]["runPolicy"]
    for role in ("Chief", "Worker"):
        ours, theirs = specs[role], manifest["spec"]["tfReplicaSpecs"][role]
        assert ours["restartPolicy"] == theirs["restartPolicy"]
        assert ours["template"]["spec"]["securityContext"] == theirs["template"]["spec"]["securityContext"]
        ours_c, theirs_c = ours["template"]["spec"]["containers"][0], theirs["template"]["spec"]["containers"][0]
        for field in ("resources", "ports", "securityContext", "volumeMounts", "command"):
            assert ours_c[field] == theirs_c[field], field
    assert [r[0] for r in fake.requests].count("DELETE") == 0


def test_two_workers_are_a_chief_and_one_worker(cluster, manifest, tmp_path):
    fake = cluster([SUCCEEDED])
    assert run_step(fake, manifest, tmp_path, workers=2) == 0
    assert fake.requests[1][3]["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 1


def test_a_retried_step_waits_for_the_tfjob_its_run_already_created(cluster, manifest, tmp_path, capsys):
    fake = cluster([[CREATED, RUNNING], SUCCEEDED])
    fake.objects[NAME] = _created_by_a_first_attempt(manifest)
    assert run_step(fake, manifest, tmp_path) == 0
    assert "exists (a retried step)" in capsys.readouterr().out
    assert [r[0] for r in fake.requests].count("POST") == 0


def _created_by_a_first_attempt(manifest):
    return tfjob_run.tfjob_for(
        manifest,
        name=NAME,
        namespace=NAMESPACE,
        image="registry.test/mnist-trainer:c-1",
        workers=3,
        storage_claim="pipeline-storage",
        run_folder=f"pipeline-runs/{NAME}",
        train_args=[],
    )


def test_a_failed_tfjob_fails_the_step_naming_it_and_the_operators_reason(cluster, manifest, tmp_path, capsys):
    fake = cluster([[CREATED, RUNNING], FAILED])
    assert run_step(fake, manifest, tmp_path) == 1
    err = capsys.readouterr().err
    assert (
        f"TFJob {NAMESPACE}/{NAME} failed: TFJobFailed: TFJob {NAMESPACE}/{NAME} has failed because "
        "1 Worker replica(s) failed." in err
    )
    assert not (tmp_path / "outputs" / "model").exists()


def test_a_tfjob_past_the_deadline_is_deleted_and_fails_the_step(cluster, manifest, tmp_path, capsys):
    fake = cluster([[CREATED, RUNNING]])  # never ends
    assert run_step(fake, manifest, tmp_path, deadline=0.2) == 1
    err = capsys.readouterr().err
    assert f"TFJob {NAMESPACE}/{NAME} did not succeed or fail within 0.2 s" in err
    assert "last condition: Running (TFJobRunning" in err and "deleted it" in err
    method, path, _, options = fake.requests[-1]
    assert (method, path) == ("DELETE", f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/tfjobs/{NAME}")
    assert options["propagationPolicy"] == "Background"  # its pods go with it
    assert fake.objects == {}


def test_the_deadline_is_measured_on_the_steps_clock_not_the_polls(manifest):
    """wait() with a clock it is handed: the deadline check needs no real time."""
    ticks = iter(range(100))

    class Api:
        deleted = []

        def get_custom(self, *args):
            return {"status": {"conditions": [CREATED]}}

        def delete_custom(self, *args):
            self.deleted.append(args)

    api = Api()
    with pytest.raises(tfjob_run.TfJobFailed, match="within 5 s"):
        tfjob_run.wait(api, NAMESPACE, NAME, 5, 1, clock=lambda: next(ticks), sleep=lambda s: None)
    assert api.deleted == [("kubeflow.org/v1", NAMESPACE, "tfjobs", NAME)]


def test_a_tfjob_deleted_by_someone_else_fails_the_step(cluster, manifest, tmp_path, capsys):
    fake = cluster([[CREATED]])
    fake.objects = _Forgetful()
    assert run_step(fake, manifest, tmp_path) == 1
    assert f"TFJob {NAMESPACE}/{NAME} is gone" in capsys.readouterr().err


class _Forgetful(dict):
    """Accepts the create, then has nothing: the TFJob was deleted behind the step's back."""

    def __setitem__(self, key, value):
        pass


def test_a_bad_training_flag_is_refused_by_mnist_trains_parser_before_anything_is_created(
    cluster, manifest, tmp_path, capsys
):
    fake = cluster([SUCCEEDED])
    with pytest.raises(SystemExit) as exit_:
        run_step(fake, manifest, tmp_path, "--epochs", "zero")
    assert exit_.value.code == 2 and "--epochs" in capsys.readouterr().err
    assert fake.requests == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": 1}, "--workers 1: a TFJob is for 2 or more"),
        ({"manifest": "not json"}, "--tfjob-manifest is not JSON"),
        ({"manifest": {"spec": {"tfReplicaSpecs": {}}}}, "spec.tfReplicaSpecs.Chief is missing"),
    ],
)
def test_bad_input_is_refused_before_anything_is_created(cluster, manifest, tmp_path, capsys, change, message):
    fake = cluster([SUCCEEDED])
    given = change.get("manifest", manifest)
    text = given if isinstance(given, str) else json.dumps(given)
    status = run_step(fake, manifest, tmp_path, workers=change.get("workers", 3), manifest_text=text)
    assert status == 2 and message in capsys.readouterr().err
    assert fake.requests == []
