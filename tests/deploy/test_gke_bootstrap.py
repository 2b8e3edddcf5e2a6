"""make gke-up / gke-down (mnist_deploy.bootstrap): the plan's order and content, and the runner
against a stand-in `gcloud` and `kubectl` on PATH that record their argv and answer the checks
as each test tells them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from mnist_deploy import bootstrap
from tests.deploy.renders import REPO_ROOT

SETTINGS = bootstrap.Settings(project="demo-project", region="europe-west4")
STANDIN = f"""#!{sys.executable}
# Stand-in for gcloud/kubectl: logs its argv; answers from the state file the test wrote.
import json, os, shlex, sys
state = json.load(open(os.environ["STANDIN_STATE"]))
argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
line = shlex.join(argv)
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
for needle, (code, stderr) in state.get("fail", {{}}).items():
    if needle in line:
        sys.stderr.write(stderr + "\\n")
        sys.exit(code)
if line in state.get("present", {{}}):
    print(state["present"][line])
    sys.exit(0)
if line in state.get("checks", []):
    sys.stderr.write("ERROR: (gcloud) NOT_FOUND: Resource not found\\n")
    sys.exit(1)
sys.exit(0)
"""


def command_line(command: tuple[str, ...]) -> str:
    """How the stand-in sees a command: its program by base name."""
    return shlex.join([os.path.basename(command[0]), *command[1:]])


class Cloud:
    """A stand-in project: which checks find something, and which commands fail how."""

    def __init__(self, tmp_path):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for name in ("gcloud", "kubectl"):
            (self.bin / name).write_text(STANDIN)
            (self.bin / name).chmod(0o755)
        self.log = tmp_path / "argv.log"
        self.state = tmp_path / "state.json"
        self.settings = bootstrap.Settings(
            project=SETTINGS.project, region=SETTINGS.region, kubectl=os.fspath(self.bin / "kubectl")
        )
        self.present: dict[str, str] = {}
        self.fail: dict[str, tuple[int, str]] = {}
        self.mark_present(*bootstrap.preflight(self.settings))

    def mark_present(self, *steps: bootstrap.Step) -> None:
        """Their checks find them; checks shared by several steps (an IAM policy's members of a
        role) list every member marked, one a line, as gcloud does."""
        for step in steps:
            line = command_line(step.check)
            answers = [a for a in self.present.get(line, "").splitlines() if a]
            self.present[line] = "\n".join([*answers, step.expect or "found"])

    def run(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
        checks = [
            command_line(step.check)
            for step in bootstrap.preflight(self.settings) + bootstrap.plan(self.settings)
            if step.check
        ]
        self.state.write_text(json.dumps({"present": self.present, "checks": checks, "fail": self.fail}))
        self.log.write_text("")
        env = {
            **os.environ,
            "STANDIN_STATE": os.fspath(self.state),
            "STANDIN_LOG": os.fspath(self.log),
            "PATH": path if path is not None else f"{self.bin}{os.pathsep}{os.environ['PATH']}",
        }
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mnist_deploy.bootstrap",
                *args,
                "--project",
                self.settings.project,
                "--region",
                self.settings.region,
                "--kubectl",
                self.settings.kubectl,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    def calls(self) -> list[str]:
        return [shlex.join(json.loads(line)) for line in self.log.read_text().splitlines()]


@pytest.fixture
def cloud(tmp_path):
    return Cloud(tmp_path)


def position(steps: list[bootstrap.Step], text: str) -> int:
    return next(i for i, step in enumerate(steps) if text in step.name)


def test_the_plan_makes_things_after_what_they_need():
    steps = bootstrap.plan(SETTINGS)
    last_api = max(i for i, step in enumerate(steps) if step.name.startswith("API "))
    assert last_api < position(steps, "Artifact Registry") < position(steps, "GKE cluster")
    assert position(steps, "GKE cluster") < position(steps, "kubectl context") < position(steps, "Training Operator")
    for i, step in enumerate(steps):
        if "Workload Identity" in step.name:  # the identity pool comes with the cluster
            assert position(steps, "GKE cluster") < i and position(steps, "Google service account mnist-") < i
        if " on gs://" in step.name:
            assert position(steps, "bucket gs://") < i
    assert steps[-1].name.startswith("global static IP")


def test_the_cluster_has_what_the_gke_overlay_needs():
    cluster = next(step for step in bootstrap.plan(SETTINGS) if step.name.startswith("GKE cluster"))
    for flag in (
        "--workload-pool=demo-project.svc.id.goog",
        "--addons=GcsFuseCsiDriver",
        "--enable-dataplane-v2",
        "--enable-managed-prometheus",
        "--region=europe-west4",
    ):
        assert flag in cluster.create
    apis = {step.create[3] for step in bootstrap.plan(SETTINGS) if step.name.startswith("API ")}
    assert {"container.googleapis.com", "artifactregistry.googleapis.com", "iap.googleapis.com"} <= apis


def test_every_step_checks_before_it_creates_unless_it_only_writes_local_config():
    for step in bootstrap.plan(SETTINGS):
        if step.check is None:
            assert (
                step.create[:3] in (("gcloud", "auth", "configure-docker"), ("gcloud", "container", "clusters"))
                and "create" not in step.create
            ), step.name
            assert step.delete is None


def test_workload_identity_binds_exactly_the_accounts_the_gke_render_annotates(renders):
    annotated = {}
    for obj in renders["overlays/gke"]:
        google = obj["metadata"].get("annotations", {}).get("iam.gke.io/gcp-service-account")
        if obj["kind"] == "ServiceAccount" and google:
            annotated[f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"] = google
    settings = bootstrap.Settings(project="demo-project")  # the render's PROJECT_ID
    bound = {}
    for step in bootstrap.plan(settings):
        if "roles/iam.workloadIdentityUser" in " ".join(step.create):
            member = next(flag for flag in step.create if flag.startswith("--member="))
            bound[member.split("[", 1)[1].rstrip("]")] = step.create[4]
    assert bound == annotated


def test_up_on_an_empty_project_creates_every_step_in_order(cloud):
    result = cloud.run("up")
    assert result.returncode == 0, result.stderr
    made = [call for call in cloud.calls() if call in {command_line(s.create) for s in bootstrap.plan(cloud.settings)}]
    assert made == [command_line(step.create) for step in bootstrap.plan(cloud.settings)]


def test_up_again_creates_nothing_that_exists(cloud):
    cloud.mark_present(*[step for step in bootstrap.plan(cloud.settings) if step.check])
    result = cloud.run("up")
    assert result.returncode == 0, result.stderr
    creates = [
        call
        for call in cloud.calls()
        if " create " in f" {call} " or " enable " in call or "add-iam-policy-binding" in call or " apply " in call
    ]
    assert creates == []
    assert "exists   GKE cluster mnist" in result.stdout


def test_up_creates_only_what_is_missing(cloud):
    plan = bootstrap.plan(cloud.settings)
    cluster = next(step for step in plan if step.name.startswith("GKE cluster"))
    bucket = next(step for step in plan if step.name.startswith("bucket"))
    cloud.mark_present(cluster, bucket)
    result = cloud.run("up")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert command_line(cluster.create) not in calls and command_line(bucket.create) not in calls
    assert command_line(next(s for s in plan if s.name.startswith("global static IP")).create) in calls


def test_dry_run_prints_every_command_without_gcloud(tmp_path):
    """Through make, as users run it; PATH has no gcloud at all."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "bash").symlink_to(shutil.which("bash"))  # the Makefile's shell, and nothing else
    env = {**os.environ, "PATH": os.fspath(tools)}
    stamp = REPO_ROOT / ".venv" / ".setup-done"
    result = subprocess.run(
        [
            shutil.which("make"),
            "--no-print-directory",
            "-o",
            os.fspath(stamp),
            "gke-up",
            "DRY_RUN=1",
            "PROJECT_ID=demo-project",
            "REGION=europe-west4",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    settings = bootstrap.Settings(
        project="demo-project", region="europe-west4", kubectl=os.fspath(REPO_ROOT / ".venv" / "bin" / "kubectl")
    )
    for step in bootstrap.preflight(settings) + bootstrap.plan(settings):
        if step.check:
            assert shlex.join(step.check).replace(os.fspath(REPO_ROOT) + "/", "") in result.stdout, step.name
        if step.create:
            assert shlex.join(step.create).replace(os.fspath(REPO_ROOT) + "/", "") in result.stdout, step.name


def test_without_a_project_make_says_to_set_it():
    stamp = REPO_ROOT / ".venv" / ".setup-done"
    env = {key: value for key, value in os.environ.items() if key != "PROJECT_ID"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", os.fspath(stamp), "gke-up", "DRY_RUN=1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "set PROJECT_ID=" in result.stderr


def test_without_gcloud_it_says_to_install_it(cloud, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cloud.run("up", path=os.fspath(empty))
    assert result.returncode == 2 and "'gcloud' not found: install the Google Cloud CLI" in result.stderr


def test_billing_disabled_stops_before_anything_is_made(cloud):
    billing = bootstrap.preflight(cloud.settings)[1]
    cloud.present[command_line(billing.check)] = "False"
    result = cloud.run("up")
    assert result.returncode == 2 and "billing is disabled" in result.stderr
    assert not any(" create " in call or " enable " in call for call in cloud.calls())


def test_permission_denied_is_named_not_taken_for_missing(cloud):
    cluster = next(step for step in bootstrap.plan(cloud.settings) if step.name.startswith("GKE cluster"))
    cloud.fail["container clusters describe"] = (
        1,
        "ERROR: (gcloud.container.clusters.describe) ResponseError: code=403, message=Required "
        '"container.clusters.get" permission(s) for "projects/demo-project/locations/europe-west4/clusters/mnist".',
    )
    result = cloud.run("up")
    assert result.returncode == 2
    assert "GKE cluster mnist: permission denied" in result.stderr and "container.clusters.get" in result.stderr
    assert command_line(cluster.create) not in cloud.calls()


def test_a_failed_create_stops_with_its_error(cloud):
    cloud.fail["artifacts repositories create"] = (
        1,
        "ERROR: (gcloud.artifacts.repositories.create) INVALID_ARGUMENT: bad location",
    )
    result = cloud.run("up")
    assert result.returncode == 1 and "bad location" in result.stderr
    assert not any("container clusters create" in call for call in cloud.calls())


def deleted(cloud: Cloud) -> list[str]:
    return [
        call
        for call in cloud.calls()
        if " delete " in f" {call} " or "remove-iam-policy-binding" in call or call.startswith("gcloud storage rm")
    ]


def test_down_removes_in_reverse_order_and_keeps_the_bucket(cloud):
    cloud.mark_present(*[step for step in bootstrap.plan(cloud.settings) if step.check])
    result = cloud.run("down")
    assert result.returncode == 0, result.stderr
    expected = [
        command_line(step.delete)
        for step in reversed(bootstrap.plan(cloud.settings))
        if step.delete and not step.storage
    ]
    assert deleted(cloud) == expected
    assert not any(call.startswith("gcloud storage rm") for call in cloud.calls())
    assert "kept     bucket gs://demo-project-mnist" in result.stdout


def test_down_with_delete_storage_removes_the_bucket_and_skips_what_is_gone(cloud):
    plan = bootstrap.plan(cloud.settings)
    bucket = next(step for step in plan if step.storage)
    cluster = next(step for step in plan if step.name.startswith("GKE cluster"))
    cloud.mark_present(bucket)
    result = cloud.run("down", "--delete-storage")
    assert result.returncode == 0, result.stderr
    assert deleted(cloud) == [command_line(bucket.delete)]
    assert f"gone     {cluster.name}" in result.stdout


def test_the_make_targets_pass_the_settings_through():
    stamp = REPO_ROOT / ".venv" / ".setup-done"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            os.fspath(stamp),
            "-n",
            "gke-down",
            "DRY_RUN=1",
            "DELETE_STORAGE=1",
            "PROJECT_ID=p",
            "GCS_BUCKET=b",
            "IAP_MEMBERS=user:a@example.com",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for flag in ('--project "p"', '--bucket "b"', "--iap-member user:a@example.com", "--dry-run", "--delete-storage"):
        assert flag in result.stdout


def test_the_setup_runner_does_not_import_the_plan_back():
    """bootstrap's main runs the plan with gcloud_runner; the runner takes the step type from
    setup_step, so the two modules do not import each other."""
    import ast
    import inspect

    from mnist_deploy import gcloud_runner

    tree = ast.parse(inspect.getsource(gcloud_runner))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "mnist_deploy.bootstrap" not in imported and "mnist_deploy.setup_step" in imported
    assert bootstrap.Step is gcloud_runner.Step


def test_the_cluster_size_is_a_make_setting_and_the_readme_says_what_it_costs():
    stamp = REPO_ROOT / ".venv" / ".setup-done"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            os.fspath(stamp),
            "gke-up",
            "DRY_RUN=1",
            "PROJECT_ID=p",
            "GKE_MACHINE_TYPE=e2-standard-4",
            "GKE_NODES_PER_ZONE=2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--num-nodes=2 --machine-type=e2-standard-4" in result.stdout
    # The README's figures are for what gke-up makes by default: a regional cluster, one node
    # per zone of the defaults' machine type, and the smaller option it names.
    readme = (REPO_ROOT / "kustomize" / "README.md").read_text()
    section = readme.split("### What the cluster is, and what it costs", 1)[1].split("\n## ", 1)[0]
    defaults = bootstrap.Settings(project="p")
    assert f"default: 3 x `{defaults.machine_type}`" in section and defaults.num_nodes == 1
    assert "GKE_MACHINE_TYPE=e2-standard-4" in section and "smaller: 3 x `e2-standard-4`" in section
    assert "per day" in section.lower() and "cloud.google.com/kubernetes-engine/pricing" in section
    vcpus = {"e2-standard-8": 8, "e2-standard-4": 4}
    per_vcpu_hour, per_gb_hour = 0.021811, 0.002923
    for machine, daily in (("e2-standard-8", "19.30"), ("e2-standard-4", "9.65")):
        hourly = vcpus[machine] * per_vcpu_hour + 4 * vcpus[machine] * per_gb_hour
        assert f"${hourly:.3f}" in section and f"${3 * hourly * 24:.2f}" == f"${daily}", machine
