"""The make targets' wiring, files only (nothing listens on the ports given): canary, promote,
rollback and rollout-status each print the state they leave; bad input exits 2 naming it."""

from __future__ import annotations

import json
import subprocess

from mnist_run.ports import free_port


def test_canary_promote_rollback_and_status_through_make(repo_root, tmp_path):
    base = tmp_path / "models" / "mnist"
    for version in (1, 2, 3):
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_bytes(b"")
    state_file = tmp_path / "rollout.json"
    state_file.write_text(json.dumps({"schema": 1, "generation": 1, "stable": 1}))

    def make(*args):
        command = [
            "make",
            "-s",
            *args,
            f"ARTIFACTS={tmp_path}",
            f"MODEL_BASE_PATH={base}",
            f"REST_PORT={free_port()}",
            f"UI_PORT={free_port()}",
        ]
        return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=120)

    canary = make("canary", "PERCENT=20")  # the newest published version by default
    assert canary.returncode == 0, canary.stderr
    assert "stable v1 at 80 %, canary v3 at 20 %" in canary.stdout
    assert 'key: "canary" value: 3' in (tmp_path / "models.config").read_text()

    status = make("rollout-status")
    assert status.returncode == 0 and "canary v3 at 20 %" in status.stdout and "no live figures" in status.stdout

    guarded = make("promote")  # no web UI answering: the guard has nothing to judge by
    assert guarded.returncode == 2 and "FORCE=1" in guarded.stderr
    promoted = make("promote", "FORCE=1")
    assert promoted.returncode == 0 and "stable v3 at 100 %" in promoted.stdout

    back = make("rollback")
    assert back.returncode == 0 and "stable v1 at 100 %" in back.stdout

    bad = make("canary", "VERSION=9")
    assert bad.returncode == 2 and "version 9 is not published" in bad.stderr
