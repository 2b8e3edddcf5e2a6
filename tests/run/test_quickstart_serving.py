"""docs/quickstart-serving.sh, the README's "only try serving" quickstart, run as it is: on free
ports, into a temporary model base path, so the commands the README shows cannot rot."""

from __future__ import annotations

import json
import os
import re
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
    env.pop("MAKEFLAGS", None)
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    return done, time.monotonic() - started, rest_port


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
    import socket

    _, _, rest_port = quickstart
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", rest_port)) != 0


def test_the_whole_quickstart_takes_under_two_minutes(quickstart):
    done, seconds, _ = quickstart
    # The whole quickstart: quick model, server start, three predictions (a 2-core machine).
    assert seconds < 120, f"the quickstart took {seconds:.0f} s"


def test_the_readme_shows_the_quickstart_commands_verbatim():
    script = SCRIPT.read_text()
    commands = script[script.index("# 1. ") :].rstrip()
    assert commands in (REPO_ROOT / "README.md").read_text()


def test_the_readme_and_the_exporter_link_to_the_one_serving_contract():
    contract = REPO_ROOT / "docs" / "serving-contract.md"
    assert "serving_default" in contract.read_text() and "predict_image_bytes" in contract.read_text()
    for readme in ("README.md", "services/model-exporter/README.md", "services/web-ui/README.md"):
        assert "serving-contract.md" in (REPO_ROOT / readme).read_text(), readme
