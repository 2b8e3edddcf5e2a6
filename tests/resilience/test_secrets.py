"""No secrets in the repository, in what goes into an image, in the rendered manifests, or in
the logs of the services these tests ran."""

from __future__ import annotations

import fnmatch
import os
import pathlib
import re
import subprocess

import pytest
import yaml

from tests.deploy import renders as deploy
from tests.resilience.figures import record
from tests.support.paths import REPO_ROOT

# Built from pieces so that this file does not match itself.
_DASHES = "-" * 5
SECRET_PATTERNS = {
    "private key": re.compile(_DASHES + r"BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY" + _DASHES),
    "service account key": re.compile(r'"private_key_id"\s*:\s*"[0-9a-f]{20,}"'),
    "Google API key": re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "bearer token": re.compile(r"(?i)authorization:\s*bearer\s+[A-Za-z0-9._\-]{20,}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]{3,}@"),
    "secret assignment": re.compile(
        r"(?i)\b(?:password|passwd|secret|api_?key|access_?token|auth_?token|private_?key)\b[\"']?\s*[:=]\s*[\"']"
        r"(?!\$\{|<|your|example|changeme|\s*[\"'])[^\"'\s]{8,}[\"']"
    ),
}
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|api_?key|private_?key|credential)")
MAX_BYTES = 2 << 20


def findings_in(text: str) -> list[str]:
    return [
        f"{name}: {match.group(0)[:40]}..."
        for name, pattern in SECRET_PATTERNS.items()
        for match in pattern.finditer(text)
    ]


def scan_files(paths) -> tuple[int, list[str]]:
    scanned, found = 0, []
    for path in paths:
        path = pathlib.Path(path)
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary (images, model files): nothing a person typed a secret into
        scanned += 1
        found += [f"{path}: {finding}" for finding in findings_in(data.decode("utf-8", errors="replace"))]
    return scanned, found


def test_the_scanner_finds_planted_secrets(tmp_path):
    planted = tmp_path / "planted.env"
    key_header = _DASHES + "BEGIN RSA PRIVATE KEY" + _DASHES
    planted.write_text(
        f"{key_header}\nMIIE\nAPI_TOKEN = 'ghp_{'a1' * 18}'\npassword: \"hunter2hunter2\"\n"
        "url=https://admin:" + "s3cr3tpw" + "@example.com/\n"
    )
    scanned, found = scan_files([planted])
    assert scanned == 1
    assert {finding.split(": ")[1] for finding in found} >= {
        "private key",
        "GitHub token",
        "secret assignment",
        "password in a URL",
    }


def test_no_secrets_in_tracked_files():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    paths = [REPO_ROOT / name for name in tracked.decode().split("\0") if name]
    scanned, found = scan_files(paths)
    record("security", "secrets scan: tracked files", files_scanned=scanned, findings=len(found))
    assert scanned > 100
    assert found == []


def image_contexts() -> dict[str, list[pathlib.Path]]:
    """For each Dockerfile, the files its .dockerignore lets into the build context."""
    contexts = {}
    for dockerfile in sorted(REPO_ROOT.glob("services/*/Dockerfile")):
        rules = [
            line.strip()
            for line in (dockerfile.parent / "Dockerfile.dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        included = [rule[1:] for rule in rules if rule.startswith("!")]
        excluded = [rule for rule in rules if not rule.startswith("!") and rule != "*"]
        files = []
        for root in included:
            candidates = [REPO_ROOT / root] if (REPO_ROOT / root).is_file() else (REPO_ROOT / root).rglob("*")
            for path in candidates:
                relative = path.relative_to(REPO_ROOT).as_posix()
                if path.is_file() and not any(
                    fnmatch.fnmatch(relative, pattern)
                    or any(fnmatch.fnmatch(part, pattern.removeprefix("**/")) for part in relative.split("/"))
                    for pattern in excluded
                ):
                    files.append(path)
        contexts[dockerfile.parent.name] = files
    return contexts


def test_no_secrets_in_what_goes_into_an_image():
    contexts = image_contexts()
    assert set(contexts) >= {"trainer", "model-exporter", "web-ui"}
    for service, files in contexts.items():
        scanned, found = scan_files(files)
        # Build arguments and environment baked into the image: none may carry a secret.
        dockerfile = (REPO_ROOT / "services" / service / "Dockerfile").read_text()
        baked = [
            line for line in dockerfile.splitlines() if re.match(r"\s*(ARG|ENV)\b", line) and SECRET_NAME.search(line)
        ]
        record(
            "security",
            f"secrets scan: {service} image build context",
            files_scanned=scanned,
            findings=len(found) + len(baked),
        )
        assert scanned > 0, f"{service}: nothing would be copied into the image?"
        assert found == [] and baked == [], found + baked


def test_no_secrets_in_the_rendered_manifests():
    from mnist_deploy import render

    objects_checked, found = 0, []
    for target in deploy.TARGETS:
        text = render.render(
            os.fspath(deploy.KUSTOMIZE / target), deploy.TEST_IMAGES, deploy.TEST_SETTINGS, os.fspath(deploy.KUBECTL)
        )
        found += [f"{target}: {finding}" for finding in findings_in(text)]
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            objects_checked += 1
            kind, name = document.get("kind"), document.get("metadata", {}).get("name")
            if kind == "Secret" and (document.get("data") or document.get("stringData")):
                found.append(f"{target}: Secret/{name} carries data in the manifests")
            for env in _env_entries(document):
                if SECRET_NAME.search(env.get("name", "")) and "value" in env:
                    found.append(f"{target}: {kind}/{name} env {env['name']} has a literal value")
    record(
        "security",
        "secrets scan: rendered manifests",
        targets=len(deploy.TARGETS),
        objects=objects_checked,
        findings=len(found),
    )
    assert found == []


def _env_entries(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield from (entry for entry in value if isinstance(entry, dict))
            else:
                yield from _env_entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _env_entries(item)


@pytest.mark.slow
def test_no_secrets_in_the_logs_of_the_services(serving_stack, logs_dir):
    # Runs after the fault, fuzz and abuse tests (file order), so the logs hold all of them.
    logs = sorted(logs_dir.glob("*.log"))
    assert any(log.name == "gunicorn.log" for log in logs) and any(log.name == "standin.log" for log in logs)
    scanned, found = scan_files(logs)
    record("security", "secrets scan: service logs of this run", files_scanned=scanned, findings=len(found))
    assert found == []
