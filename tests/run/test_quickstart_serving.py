"""The README's "only try serving" quickstart, as a reader pastes it: the block is fed to a fresh
bash on its standard input, from the repository root, on free ports, into a temporary model base
path. tests/conventions/test_doc_commands.py checks that the block is docs/quickstart-serving.sh
byte for byte, so the script and the README are tested at once."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time

import pytest

from mnist_run.ports import free_ports
from tests.support.make import VENV
from tests.support.paths import DATA_DIR, REPO_ROOT

SCRIPT = REPO_ROOT / "docs" / "quickstart-serving.sh"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    root = tmp_path_factory.mktemp("quickstart")
    grpc_port, rest_port = free_ports(2)
    env = {
        **os.environ,
        "VENV": VENV,
        "GRPC_PORT": str(grpc_port),
        "REST_PORT": str(rest_port),
        "MODEL_BASE_PATH": str(root / "models" / "mnist"),
        "QUICK_TRAIN_DIR": str(root / "training-quick"),
        "DATA_DIR": str(DATA_DIR),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    started = time.monotonic()
    done = paste_the_quickstart(env)
    return done, time.monotonic() - started, rest_port


def readme_block() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    marker = "<!-- shell: from docs/quickstart-serving.sh -->\n```sh\n"
    assert marker in readme, "README.md no longer shows docs/quickstart-serving.sh"
    return readme.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"


def paste_the_quickstart(env: dict[str, str]) -> subprocess.CompletedProcess:
    """bash reading the README's block from its standard input, as a terminal feeds a paste."""
    env = {key: value for key, value in env.items() if not key.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["bash", "-s"],
        input=readme_block(),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )


def test_the_quickstart_runs_to_the_end(quickstart):
    done, _, _ = quickstart
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_both_rest_forms_and_grpc_predict_the_same_digit(quickstart):
    done, _, _ = quickstart
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"predictions"')]
    assert len(answers) == 2, done.stdout
    classes = [answer["predictions"][0]["classes"] for answer in answers]
    assert len(answers[0]["predictions"][0]["probabilities"]) == 10
    grpc = re.search(r"^gRPC: class (\d)$", done.stdout, re.MULTILINE)
    assert grpc and classes[0] == classes[1] == int(grpc.group(1))


def test_the_model_server_is_stopped_afterwards(quickstart):
    _, _, rest_port = quickstart
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", rest_port)) != 0


def test_the_whole_quickstart_takes_under_two_minutes(quickstart):
    done, seconds, _ = quickstart
    # The whole quickstart: quick model, server start, three predictions (a 2-core machine).
    assert seconds < 120, f"the quickstart took {seconds:.0f} s"


def test_the_pasted_block_sets_up_what_it_uses():
    # Pasted into a fresh shell, nothing but the block sets the ports, the Python and the folder.
    block = readme_block()
    for setting in ("export GRPC_PORT=${GRPC_PORT:-8500} REST_PORT=${REST_PORT:-8501}", "PY=", "body=$(mktemp -d)"):
        assert setting in block
    assert block.strip() in SCRIPT.read_text()


def test_a_taken_port_stops_the_quickstart_naming_the_variable(tmp_path):
    # A model server already up (a `make run`) must not answer in place of the quickstart's own.
    grpc_port = free_ports(1)[0]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        done = paste_the_quickstart(
            {
                **os.environ,
                "VENV": VENV,
                "GRPC_PORT": str(grpc_port),
                "REST_PORT": str(busy),
                "MODEL_BASE_PATH": str(tmp_path / "models"),
                "DATA_DIR": str(DATA_DIR),
            }
        )
    assert done.returncode != 0
    assert f"port {busy} (REST_PORT) is in use (by a `make run` or `make serve` already up?)" in done.stderr
    assert not (tmp_path / "models").exists()  # stopped before making a model


def test_the_readme_and_the_exporter_link_to_the_one_serving_contract():
    contract = REPO_ROOT / "docs" / "serving-contract.md"
    assert "serving_default" in contract.read_text() and "predict_image_bytes" in contract.read_text()
    for readme in ("README.md", "services/model-exporter/README.md", "services/web-ui/README.md"):
        assert "serving-contract.md" in (REPO_ROOT / readme).read_text(), readme
