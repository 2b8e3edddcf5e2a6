"""The Kubeflow pipeline's last two steps, run as the CLIs they are: mnist-evaluate judges a
published version on the held-out test split and hands KFP its figures in KFP's own artifact
formats; mnist-publish moves the rollout (first version stable, a later one the canary, never
100 % at once); mnist-export's --protect-state-file keeps the rollout's versions from retention."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mnist_common.dataset import load_split
from mnist_exporter import evaluate, publish
from mnist_exporter.cli import main as export_main
from tests.model_exporter.exporter_helpers import export_args

RESULT = json.dumps({"version": 1, "published": True})


def executor_input(tmp_path) -> dict:
    """The part of KFP's ExecutorInput the command reads (pipeline_spec.proto's ExecutorInput)."""
    artifact = {"name": "a", "type": {"schemaTitle": "system.Metrics"}, "uri": "file:///kfp/out"}
    return {
        "outputs": {
            "artifacts": {
                name: {"artifacts": [artifact | {"name": name}]}
                for name in ("metrics", "confusion_matrix", "model_card")
            },
            "outputFile": os.fspath(tmp_path / "kfp" / "executor_output.json"),
        }
    }


def run_evaluate(tmp_path, base, data_dir, result=RESULT, extra=()):
    return evaluate.main(
        [
            "--data-dir", os.fspath(data_dir), "--model-base-path", os.fspath(base), "--export-result", result,
            "--metrics-out", os.fspath(tmp_path / "metrics"), "--confusion-matrix-out", os.fspath(tmp_path / "cm"),
            "--model-card-out", os.fspath(tmp_path / "card.md"), *extra,
        ]
    )  # fmt: skip


def test_evaluate_writes_the_test_figures_in_kfps_formats(tmp_path, published_base, data_dir, capsys):
    assert (
        run_evaluate(
            tmp_path, published_base, data_dir, extra=["--executor-input", json.dumps(executor_input(tmp_path))]
        )
        == 0
    )
    test = load_split(os.fspath(data_dir), "test")
    figures = json.loads((tmp_path / "metrics").read_text())
    matrix = json.loads((tmp_path / "cm").read_text())
    rows = [row["row"] for row in matrix["rows"]]
    assert figures["version"] == 1 and figures["test_digits"] == len(test)
    assert sum(map(sum, rows)) == len(test)
    assert [sum(row) for row in rows] == [int((test.labels == d).sum()) for d in range(10)]
    assert sum(rows[d][d] for d in range(10)) / len(test) == pytest.approx(figures["test_accuracy"], abs=1e-6)
    assert figures["test_accuracy"] > 0.5  # the tiny model is far better than chance
    assert "# Model card: mnist version 1" in (tmp_path / "card.md").read_text()
    output = json.loads((tmp_path / "kfp" / "executor_output.json").read_text())["artifacts"]
    metrics = output["metrics"]["artifacts"][0]
    assert metrics["name"] == "metrics" and metrics["uri"] == "file:///kfp/out"
    assert metrics["metadata"]["test_accuracy"] == figures["test_accuracy"]
    assert output["confusion_matrix"]["artifacts"][0]["metadata"] == {"confusionMatrix": matrix}
    assert "test accuracy" in capsys.readouterr().out


def test_evaluate_hands_on_the_evaluation_written_at_export_without_recomputing_it(
    tmp_path, published_base, data_dir, monkeypatch, capsys
):
    from mnist_exporter import held_out

    def must_not_run(*args, **kwargs):
        raise AssertionError("the version's evaluation from export was computed again")

    monkeypatch.setattr(held_out, "evaluate_saved_model", must_not_run)
    assert run_evaluate(tmp_path, published_base, data_dir) == 0
    with open(os.path.join(published_base, "1", "assets.extra", "evaluation.json")) as handle:
        exported = json.load(handle)
    figures = json.loads((tmp_path / "metrics").read_text())
    matrix = json.loads((tmp_path / "cm").read_text())
    assert [row["row"] for row in matrix["rows"]] == exported["confusion_matrix"]
    assert (figures["test_accuracy"], figures["test_digits"], figures["test_mistakes"]) == (
        exported["accuracy"],
        exported["digits"],
        exported["mistakes_total"],
    )
    assert (figures["test_accuracy_low"], figures["test_accuracy_high"]) == (
        exported["interval"]["low"],
        exported["interval"]["high"],
    )
    assert figures["test_per_class_recall"] == {str(row["digit"]): row["recall"] for row in exported["per_class"]}
    assert figures["evaluation"] == "written at export"
    assert "| test evaluation | written at export |" in (tmp_path / "card.md").read_text()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("remove", "the version has no readable evaluation from export"),
        ("other data", "made on another data set than --data-dir's"),
    ],
)
def test_evaluate_computes_an_evaluation_the_version_lacks_and_says_so(
    tmp_path, published_base, data_dir, capsys, damage, said
):
    base = tmp_path / "models"
    shutil.copytree(published_base, base)
    path = base / "1" / "assets.extra" / "evaluation.json"
    exported = json.loads(path.read_text())
    if damage == "remove":
        path.unlink()
    else:
        path.write_text(json.dumps(exported | {"dataset_sha256": "0" * 64}))
    left = path.read_bytes() if path.exists() else None
    assert run_evaluate(tmp_path, base, data_dir) == 0
    assert said in capsys.readouterr().err
    figures = json.loads((tmp_path / "metrics").read_text())
    matrix = json.loads((tmp_path / "cm").read_text())
    # held_out's own computation on the same version and data: the export's figures again.
    assert [row["row"] for row in matrix["rows"]] == exported["confusion_matrix"]
    assert figures["test_accuracy"] == exported["accuracy"] and figures["test_digits"] == exported["digits"]
    assert figures["evaluation"].startswith("computed by mnist-evaluate") and said in figures["evaluation"]
    assert said in (tmp_path / "card.md").read_text()
    assert (path.read_bytes() if path.exists() else None) == left  # the published version is not rewritten


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (json.dumps({"version": 9}), "version 9 is not published there"),
        ("not json", 'is not {"version": N, ...}'),
        (json.dumps({"version": True}), 'is not {"version": N, ...}'),
    ],
)
def test_evaluate_refuses_a_version_it_cannot_judge(tmp_path, published_base, data_dir, capsys, result, message):
    assert run_evaluate(tmp_path, published_base, data_dir, result=result) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics").exists()


def run_publish(tmp_path, version: int, percent="10"):
    return publish.main(
        [
            "--export-result", json.dumps({"version": version, "published": True}), "--canary-percent", percent,
            "--state-file", os.fspath(tmp_path / "rollout.json"),
            "--model-config-file", os.fspath(tmp_path / "models.config"), "--served-base-path", "/srv/models/mnist",
        ]
    )  # fmt: skip


def test_publish_makes_the_first_version_stable_and_a_later_one_the_canary(tmp_path, capsys):
    assert run_publish(tmp_path, 1) == 0
    state = json.loads((tmp_path / "rollout.json").read_text())
    assert (state["stable"], state["canary"]) == (1, None)
    assert run_publish(tmp_path, 2, "25") == 0
    state = json.loads((tmp_path / "rollout.json").read_text())
    assert (state["stable"], state["canary"], state["canary_percent"]) == (1, 2, 25)
    config = (tmp_path / "models.config").read_text()
    assert 'base_path: "/srv/models/mnist"' in config and "versions: 1" in config and "versions: 2" in config
    assert 'version_labels { key: "canary" value: 2 }' in config
    assert run_publish(tmp_path, 2, "25") == 0
    assert "unchanged" in capsys.readouterr().out


@pytest.mark.parametrize("percent", ["100", "0", "ten"])
def test_publish_never_gives_a_new_version_all_traffic(tmp_path, capsys, percent):
    with pytest.raises(SystemExit) as exit_:
        run_publish(tmp_path, 1, percent)
    assert exit_.value.code == 2 and "--canary-percent" in capsys.readouterr().err
    assert not (tmp_path / "rollout.json").exists()


def test_publish_refuses_a_state_file_that_does_not_parse(tmp_path, capsys):
    (tmp_path / "rollout.json").write_text("{")
    assert run_publish(tmp_path, 2) == 2
    assert "rollout.json: not JSON" in capsys.readouterr().err
    assert (tmp_path / "rollout.json").read_text() == "{"


def test_export_keeps_the_versions_the_rollout_state_names(tmp_path, base_copy, trained_dir, data_dir):
    state = tmp_path / "rollout.json"
    state.write_text(json.dumps({"schema": 1, "generation": 1, "stable": 1, "canary": None, "canary_percent": 0}))
    args = export_args(trained_dir, data_dir, base_copy, "--republish", "--keep-versions", "1")
    assert export_main([*args, "--protect-state-file", os.fspath(state)]) == 0
    assert sorted(os.listdir(base_copy)) == ["1", "2"]
    unprotected = tmp_path / "unprotected"
    shutil.copytree(base_copy, unprotected)
    assert export_main([*export_args(trained_dir, data_dir, unprotected, "--republish", "--keep-versions", "1")]) == 0
    assert sorted(os.listdir(unprotected)) == ["3"]
    assert export_main([*args, "--protect-state-file", os.fspath(tmp_path / "absent.json")]) == 0


class FakeApiServer:
    """A loopback stand-in for the two API server calls mnist-publish makes: GET the ConfigMap and
    PATCH it by server-side apply (Kubernetes' apply-patch content type), recorded as received."""

    def __init__(self, data: dict | None):
        import http.server
        import threading

        self.data, self.requests = data, []
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

            def do_GET(self):
                fake.requests.append(("GET", self.path, self.headers.get("Authorization"), None, None))
                if self.path.startswith("/api/v1/namespaces/mnist/pods?"):
                    self._answer(200, {"kind": "PodList", "items": []})  # no model server running yet
                elif fake.data is None:
                    self._answer(404, {"kind": "Status", "code": 404})
                else:
                    self._answer(200, {"kind": "ConfigMap", "data": fake.data})

            def do_PATCH(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    ("PATCH", self.path, self.headers.get("Authorization"), self.headers["Content-Type"], body)
                )
                fake.data = body["data"]
                self._answer(200, body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def publish_to_cluster(fake, version: int, capsys=None):
    from mnist_common.kube_api import InClusterApi

    api = InClusterApi(fake.url, token="pod-token", ca_file=False)
    argv = [
        "--export-result",
        json.dumps({"version": version}),
        "--canary-percent",
        "10",
        "--configmap-namespace",
        "mnist",
    ]
    return publish.main(argv, api=api)


def test_publish_to_a_cluster_applies_the_rollout_configmap_whole(capsys):
    fake = FakeApiServer({})
    try:
        assert publish_to_cluster(fake, 1) == 0
        assert publish_to_cluster(fake, 2) == 0
    finally:
        fake.close()
    patches = [request for request in fake.requests if request[0] == "PATCH"]
    for _, path, auth, content_type, _ in patches:
        assert (auth, content_type) == ("Bearer pod-token", "application/apply-patch+yaml")
        assert path == "/api/v1/namespaces/mnist/configmaps/model-rollout?fieldManager=mnist-rollout&force=true"
    # The rollout's phases, one key a write: published, the model server's config, the web UI's split.
    body = patches[-1][4]
    assert list(body["data"]) == ["published.json", "models.config", "rollout.json"]
    state = json.loads(body["data"]["rollout.json"])
    assert (state["stable"], state["canary"], state["canary_percent"]) == (1, 2, 10)
    assert json.loads(body["data"]["published.json"]) == {"versions": [1, 2]}
    assert 'version_labels { key: "canary" value: 2 }' in body["data"]["models.config"]
    assert (
        "stable v1 at 100 %, no canary -> stable v1 at 90 %, canary v2 at 10 % (ConfigMap model-rollout"
        in capsys.readouterr().out
    )


def test_publish_to_a_cluster_without_the_deploys_configmap_is_refused(capsys):
    fake = FakeApiServer(None)
    try:
        assert publish_to_cluster(fake, 1) == 2
    finally:
        fake.close()
    assert "the cluster has no ConfigMap model-rollout in mnist: run make deploy first" in capsys.readouterr().err
    assert [request[0] for request in fake.requests] == ["GET"]  # nothing written


def test_publish_outside_a_pod_says_so(capsys, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    argv = ["--export-result", RESULT, "--canary-percent", "10", "--configmap-namespace", "mnist"]
    assert publish.main(argv) == 2
    assert "works only inside the cluster" in capsys.readouterr().err


def test_publish_wants_one_target_not_both(tmp_path, capsys):
    argv = ["--export-result", RESULT, "--canary-percent", "10", "--configmap-namespace", "mnist"]
    assert publish.main([*argv, "--state-file", os.fspath(tmp_path / "r.json")]) == 2
    assert "not both" in capsys.readouterr().err


def test_export_writes_its_result_into_a_folder_it_makes(tmp_path, base_copy, trained_dir, data_dir):
    result = tmp_path / "kfp" / "export" / "result"
    args = export_args(trained_dir, data_dir, base_copy, "--result-file", os.fspath(result))
    assert export_main(args) == 0
    assert json.loads(result.read_text()) == {"version": 1, "published": False}
