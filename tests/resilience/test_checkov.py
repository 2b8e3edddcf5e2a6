"""Every rendered kustomization scanned with checkov's Kubernetes checks: no finding is left
unless kustomize/.checkov.yaml skips its check with a written reason.

checkov pins packaging<24, which cannot share requirements/constraints.txt with pytest, so it
lives in its own venv (`make checkov-setup`, locked by requirements/checkov-constraints.txt).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest
import yaml

from tests.deploy import renders as deploy
from tests.resilience.figures import record
from tests.support.paths import REPO_ROOT

CONFIG = REPO_ROOT / "kustomize" / ".checkov.yaml"
CHECKOV = pathlib.Path(os.environ.get("CHECKOV_BIN", REPO_ROOT / "artifacts" / "checkov" / "venv" / "bin" / "checkov"))

# A manifest that breaks several policies on purpose: the scan must find them, or it scans nothing.
CANARY = """\
apiVersion: v1
kind: Pod
metadata: {name: canary, namespace: default}
spec:
  containers:
    - name: canary
      image: busybox
      securityContext: {privileged: true}
"""


def skipped_checks() -> dict[str, str]:
    """{check id: the reason written above it in kustomize/.checkov.yaml}."""
    config = yaml.safe_load(CONFIG.read_text())
    lines = CONFIG.read_text().splitlines()
    reasons = {}
    for check in config["skip-check"]:
        at = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        comment = []
        for line in reversed(lines[:at]):
            if not line.strip().startswith("#"):
                break
            comment.insert(0, line.strip().lstrip("# "))
        reasons[check] = " ".join(comment)
    return reasons


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run 'make checkov-setup' (make test does it for you)")
    from mnist_deploy import render

    folder = tmp_path_factory.mktemp("checkov")
    targets = {}
    for target in deploy.TARGETS:
        text = render.render(
            os.fspath(deploy.KUSTOMIZE / target), deploy.TEST_IMAGES, deploy.TEST_SETTINGS, os.fspath(deploy.KUBECTL)
        )
        name = target.replace("/", "__") + ".yaml"
        (folder / name).write_text(text)
        targets[name] = target
    (folder / "canary.yaml").write_text(CANARY)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no calls home: the scan works offline
    result = subprocess.run(
        [os.fspath(CHECKOV), "-d", os.fspath(folder), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=folder,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: some check failed
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r.get("check_type") == "kubernetes"]
    by_file: dict[str, dict[str, list]] = {}
    for outcome in ("passed_checks", "failed_checks"):
        for check in report["results"][outcome]:
            file_name = pathlib.Path(check["file_path"]).name
            by_file.setdefault(file_name, {"passed_checks": [], "failed_checks": []})[outcome].append(check)
    return targets, by_file


def test_the_scan_finds_a_privileged_container(scan):
    _, by_file = scan
    failed = {check["check_id"] for check in by_file["canary.yaml"]["failed_checks"]}
    assert "CKV_K8S_16" in failed  # "Container should not be privileged"


def test_every_skipped_check_has_a_reason():
    reasons = skipped_checks()
    assert reasons, "kustomize/.checkov.yaml skips nothing; then it needs no skip-check at all"
    for check, reason in reasons.items():
        assert len(reason) > 40, f"{check} is skipped without a written reason"


def test_rendered_manifests_have_no_finding_without_a_written_reason(scan):
    targets, by_file = scan
    reasons = skipped_checks()
    unexplained, used = [], set()
    for file_name, target in sorted(targets.items()):
        checks = by_file.get(file_name, {"passed_checks": [], "failed_checks": []})
        findings = checks["failed_checks"]
        open_findings = [c for c in findings if c["check_id"] not in reasons]
        used.update(c["check_id"] for c in findings if c["check_id"] in reasons)
        unexplained += [f"{target}: {c['check_id']} {c['check_name']} ({c['resource']})" for c in open_findings]
        record(
            "scan",
            f"checkov kubernetes: {target}",
            checks_passed=len(checks["passed_checks"]),
            findings=len(findings),
            findings_skipped_with_reason=len(findings) - len(open_findings),
            findings_open=len(open_findings),
        )
        assert checks["passed_checks"], f"checkov checked nothing in {target}"
    assert unexplained == [], "\n".join(unexplained)
    # A skip that no render needs any more is removed rather than kept as a blanket exception.
    assert used == set(reasons), f"kustomize/.checkov.yaml skips checks no render fails: {set(reasons) - used}"
