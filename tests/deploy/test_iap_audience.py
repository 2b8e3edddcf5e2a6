"""Behind IAP the web UI checks IAP's signed header itself: every render with the iap-ingress
component requires it, and `make iap-audience` hands it the audience once the Ingress exists."""

from __future__ import annotations

import os
import subprocess

from tests.deploy.renders import REPO_ROOT, find


def _web_ui_env(objects) -> dict:
    container = find(objects, "Deployment", "web-ui")["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry for entry in container.get("env", [])}


def test_every_render_behind_iap_requires_the_check_and_reads_its_audience(renders):
    behind_iap = [target for target, objects in renders.items() if any(o["kind"] == "Ingress" for o in objects)]
    assert behind_iap, "no render has the iap-ingress component"
    for target in behind_iap:
        env = _web_ui_env(renders[target])
        assert env["IAP_REQUIRED"]["value"] == "1", target
        reference = env["IAP_AUDIENCE"]["valueFrom"]["configMapKeyRef"]
        assert reference == {"name": "web-ui-iap", "key": "audience", "optional": True}, target


def test_renders_without_iap_leave_the_check_off(renders):
    for target, objects in renders.items():
        if not any(o["kind"] == "Ingress" for o in objects):
            assert "IAP_REQUIRED" not in _web_ui_env(objects), target


def test_make_iap_audience_writes_the_configmap_and_restarts_the_web_ui(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DRY_RUN", "PROJECT_ID")}
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "iap-audience", "DRY_RUN=1", "PROJECT_ID=demo", f"ARTIFACTS={tmp_path}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "web-ui-iap.yaml").read_text()
    assert "name: web-ui-iap" in written and 'audience: "/projects/PROJECT_NUMBER/global/backendServices/' in written
    assert "apply --server-side -f" in result.stdout and "rollout restart deployment/web-ui" in result.stdout


def test_make_iap_audience_needs_a_project():
    env = {key: value for key, value in os.environ.items() if key != "PROJECT_ID"}
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "iap-audience", "DRY_RUN=1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "set PROJECT_ID" in result.stderr
