"""Every pip install command of the repository resolves with the public index unreachable for the
project's own package names: each local package comes from its path, never from an index.

A dependency on `mnist-common` that no path satisfies sends pip to the index: on the public one it
fails ("No matching distribution found for mnist-common"), or, worse, installs whatever someone
registered there under that name (dependency confusion). Here pip resolves each command for real
(`pip install --dry-run --report`, with pip's own resolver and the commands' own constraints)
against an index on loopback that answers 404 for the project's names and a dependency-free stub
wheel, at the version the command's lock pins, for every other name.

The commands are read where they are written: the Makefile's recipes (`make -n`), the
Dockerfiles' RUN lines, Cloud Build's steps and the GitHub workflows; a file with a `pip install`
this test does not read fails it.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
import zipfile

import pytest
import yaml

from tests.deploy.renders import REPO_ROOT

PIP_INSTALL = re.compile(r"\bpip\s+install\b")
# Where install commands may be written, and how this test reads each kind.
DOCKERFILES = sorted(path.relative_to(REPO_ROOT).as_posix() for path in REPO_ROOT.glob("services/*/Dockerfile"))
CLOUD_BUILD = ".ci/cloudbuild.yaml"
WORKFLOWS = sorted(
    path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / ".github" / "workflows").glob("*.y*ml")
)
MAKEFILES = ["Makefile", *sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "mk").glob("*.mk"))]
# Prose that mentions pip install without being a command to run.
PROSE = re.compile(r"\.(md|txt)$|^tests/|^libs/serving_protos/src/mnist_serving_protos/generate\.py$")
DEFAULT_LOCK = "requirements/constraints.txt"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def own_packages() -> dict[str, str]:
    """{normalized name: folder} of every Python package in the repository."""
    found = {}
    for pyproject in REPO_ROOT.glob("**/pyproject.toml"):
        if any(part in (".venv", "artifacts", "node_modules") for part in pyproject.relative_to(REPO_ROOT).parts):
            continue
        name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
        if name:
            found[normalize(name)] = pyproject.parent.relative_to(REPO_ROOT).as_posix()
    return found


OWN = own_packages()


# ------------------------------------------------------------- where commands are written --------


def shell_commands(script: str) -> list[str]:
    """The pip install commands of a shell script (line continuations joined, split at && ; |)."""
    joined = re.sub(r"\\\n", " ", script)
    commands = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0]
        for part in re.split(r"&&|;|\|\|", line):
            if PIP_INSTALL.search(part):
                commands.append(part.strip())
    return commands


def dockerfile_commands(path: str) -> list[tuple[str, str]]:
    text = (REPO_ROOT / path).read_text()
    runs = re.findall(r"^RUN\s+((?:.*\\\n)*.*)$", text, re.M)
    commands = []
    for run in runs:
        script = re.sub(r"--mount=\S+\s*", "", re.sub(r"\\\n", " ", run))
        commands += [(f"{path}: RUN", command) for command in shell_commands(script)]
    return commands


def cloud_build_commands() -> list[tuple[str, str]]:
    build = yaml.safe_load((REPO_ROOT / CLOUD_BUILD).read_text())
    return [
        (f"{CLOUD_BUILD}: step {step.get('id')}", command)
        for step in build["steps"]
        for command in shell_commands(step.get("script", "") + "\n" + " ".join(step.get("args", [])))
    ]


def workflow_commands(path: str) -> list[tuple[str, str]]:
    workflow = yaml.safe_load((REPO_ROOT / path).read_text())
    return [
        (f"{path}: {job_id}", command)
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        for command in shell_commands(step.get("run", ""))
    ]


def make_install_targets() -> list[str]:
    """`setup` and every target whose recipe is the tool_venv macro (checkov, KServe, ...)."""
    targets = ["setup"]
    for makefile in MAKEFILES:
        text = (REPO_ROOT / makefile).read_text()
        for stamp in re.findall(r"^(\$\([A-Z_]+_STAMP\)):.*\n\t\$\(call tool_venv,", text, re.M):
            phony = re.search(rf"^([a-z][a-z0-9-]*):\s*{re.escape(stamp)}\s*##", text, re.M)
            assert phony, f"{makefile}: no documented target builds {stamp}"
            targets.append(phony.group(1))
    return targets


def make_commands(tmp_path) -> list[tuple[str, str]]:
    commands = []
    for target in make_install_targets():
        printed = subprocess.run(
            ["make", "-n", "-B", target, f"VENV={tmp_path}/venv", f"ARTIFACTS={tmp_path}/artifacts"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        commands += [(f"make {target}", command) for command in shell_commands(printed)]
    return commands


def every_command(tmp_path) -> list[tuple[str, str]]:
    found = make_commands(tmp_path) + cloud_build_commands()
    for path in DOCKERFILES:
        found += dockerfile_commands(path)
    for path in WORKFLOWS:
        found += workflow_commands(path)
    return found


def test_no_install_command_is_written_where_this_test_does_not_read():
    read = {*DOCKERFILES, CLOUD_BUILD, *WORKFLOWS, *MAKEFILES}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    unread = [
        path
        for path in tracked.splitlines()
        if path not in read
        and not PROSE.search(path)
        and (REPO_ROOT / path).is_file()
        and PIP_INSTALL.search((REPO_ROOT / path).read_text(errors="replace"))
    ]
    assert unread == [], "pip install commands this test does not resolve"


# ------------------------------------------------------------------------ the index ---------------


def pins(lock: str) -> dict[str, str]:
    return {
        normalize(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (REPO_ROOT / lock).read_text(), re.M)
    }


def stub_wheel(name: str, version: str) -> tuple[str, bytes]:
    """A wheel with metadata only and no dependencies."""
    dist = re.sub(r"[-.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stub\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, text in files.items():
            # A fixed date: the same bytes every time, so the listing's hash matches the file.
            wheel.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return f"{dist}-{version}-py3-none-any.whl", buffer.getvalue()


class Index:
    """A PEP 503 simple index on loopback: 404 for our names, stubs at `versions` for the rest."""

    def __init__(self):
        self.versions: dict[str, str] = {}
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = [part for part in self.path.split("/") if part]
                # /simple/<name>/ lists the one stub; /files/<name>/<wheel> is the stub itself.
                name = normalize(parts[1]) if len(parts) >= 2 and parts[0] in ("simple", "files") else ""
                if not name or name in OWN:
                    self.send_error(404)
                    return
                filename, wheel = stub_wheel(name, index.versions.get(name, "1.0"))
                if parts[0] == "simple":
                    digest = hashlib.sha256(wheel).hexdigest()
                    body = (
                        f'<html><body><a href="/files/{name}/{filename}#sha256={digest}">{filename}</a></body></html>'
                    )
                    self.reply(body.encode(), "text/html")
                else:
                    self.reply(wheel, "application/octet-stream")

            def reply(self, body: bytes, content_type: str):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"


@pytest.fixture(scope="module")
def index():
    served = Index()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


# ------------------------------------------------------------------------ resolving ---------------


def pip_arguments(command: str) -> tuple[list[str], str]:
    """The command's requirements and options as a dry run takes them, and its lock."""
    words = shlex.split(command)
    words = words[words.index("install") + 1 :]
    arguments, lock = [], DEFAULT_LOCK
    # --python: which environment `uv pip install` writes into (make setup's), not what it resolves.
    skip_value = {"--target", "-t", "--prefix", "--root", "--python"}
    dropped = {"--quiet", "-q", "--upgrade", "-U", "--no-build-isolation", "--user"}
    iterator = iter(words)
    for word in iterator:
        if word in skip_value:
            next(iterator)
        elif word in dropped:
            continue
        elif word in ("-c", "--constraint"):
            lock = next(iterator)
            arguments += ["-c", lock]
        else:
            arguments.append(word)
    return arguments, lock


def resolve(index: Index, command: str) -> dict:
    arguments, lock = pip_arguments(command)
    index.versions = pins(lock)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            "--no-build-isolation",
            "--index-url",
            index.url,
            "--no-cache-dir",
            *arguments,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        # No pip configuration of this machine (extra indexes, find-links) takes part.
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=300,
    )
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def test_the_index_refuses_our_names_so_a_missing_path_fails(index):
    with pytest.raises(AssertionError, match="mnist-common"):
        resolve(index, "pip install -c requirements/constraints.txt ./tools/mnist_deploy")


def test_every_install_command_resolves_our_packages_from_their_paths(index, tmp_path):
    commands = every_command(tmp_path)
    sources = {source for source, _ in commands}
    assert any(source.startswith("make setup") for source in sources)
    assert any(source.startswith(CLOUD_BUILD) for source in sources)
    assert all(any(source.startswith(path) for source in sources) for path in DOCKERFILES)
    failures = []
    for source, command in commands:
        try:
            report = resolve(index, command)
        except AssertionError as failed:
            failures.append(f"{source}: {failed}")
            continue
        for item in report["install"]:
            name = normalize(item["metadata"]["name"])
            url = item["download_info"]["url"]
            if name in OWN and not (url.startswith("file://") and url.rstrip("/").endswith(OWN[name])):
                failures.append(f"{source}: {name} from {url}")
    assert not failures, "\n\n".join(failures)
