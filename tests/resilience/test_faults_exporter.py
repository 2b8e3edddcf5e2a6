"""The exporter SIGKILLed at each step of an export: no partial version is ever visible.

tests/model_exporter/test_kill.py kills it at one exact moment (between validation and publishing,
through its pause hook). Here real exports are killed at every step they go through, found by
watching the base path the way TF Serving does, while the same watcher checks on every look
(every ~2 ms) that each integer-named folder is a complete version and that some version is
always there to serve. The exports run at the same time, to keep the wall time down.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time

import pytest

from tests.resilience.figures import record
from tests.resilience.resilience_support import exporter_command, pipeline_env

pytestmark = pytest.mark.slow

EXPORT_TIMEOUT_S = 300
# Files every published version holds; a version missing one is partial.
REQUIRED_FILES = (
    "saved_model.pb",
    "variables/variables.index",
    "assets.extra/tf_serving_warmup_requests",
    "assets.extra/model_card.json",
)


def _staging(base: pathlib.Path) -> list[pathlib.Path]:
    return [base / name for name in os.listdir(base) if name.startswith(".staging-")]


def _staged(relative: str):
    return lambda base: any((folder / relative).exists() for folder in _staging(base))


# The steps of one export, in order (mnist_exporter.exporter.run_export), each recognised by what
# it leaves in the base path; the exporter is killed as soon as the watcher sees it.
KILL_POINTS = {
    "staging folder created, SavedModel being written": lambda base: bool(_staging(base)),
    "SavedModel written, warmup requests being written": _staged("saved_model.pb"),
    "warmup requests written, validation gate running": _staged("assets.extra/tf_serving_warmup_requests"),
    "model card written, version being published": _staged("assets.extra/model_card.json"),
    "version published, retention removing the old one": lambda base: (
        (base / "2").exists() or any(name.startswith(".deleting-") for name in os.listdir(base))
    ),
}
# The last two steps take milliseconds; the exporter may finish before the kill lands.
MAY_FINISH_FIRST = {"model card written, version being published", "version published, retention removing the old one"}


def incomplete_files(version_dir: pathlib.Path) -> list[str] | None:
    """Missing parts of a version folder; None when the folder itself is gone (retention)."""
    missing = [name for name in REQUIRED_FILES if not (version_dir / name).exists()]
    if not list((version_dir / "variables").glob("variables.data-*")):
        missing.append("variables/variables.data-*")
    if missing and not version_dir.exists():
        return None
    if not missing:
        try:
            json.loads((version_dir / "assets.extra" / "model_card.json").read_text())
        except FileNotFoundError:
            return None if not version_dir.exists() else ["assets.extra/model_card.json"]
        except ValueError:
            missing.append("assets.extra/model_card.json (not JSON)")
    return missing


@dataclasses.dataclass
class WatchedExport:
    kill_point: str
    base: pathlib.Path
    log_path: pathlib.Path
    looks: int = 0
    partial_seen: list[str] = dataclasses.field(default_factory=list)
    moments_without_version: int = 0
    killed: bool = False
    returncode: int | None = None
    seconds_to_kill: float | None = None

    def watch(self, command: list[str]) -> None:
        trigger = KILL_POINTS[self.kill_point]
        with open(self.log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=pipeline_env())
        started = time.monotonic()
        try:
            while True:
                finished = process.poll() is not None
                self._look()
                if not self.killed and not finished and trigger(self.base):
                    process.send_signal(signal.SIGKILL)
                    self.killed, self.seconds_to_kill = True, time.monotonic() - started
                if finished:
                    break
                if time.monotonic() - started > EXPORT_TIMEOUT_S:
                    raise AssertionError(f"{self.kill_point}: the export neither finished nor reached the step")
                time.sleep(0.002)
        finally:
            if process.poll() is None:
                process.kill()
            self.returncode = process.wait()
        self._look()

    def _look(self) -> None:
        self.looks += 1
        complete = 0
        for name in os.listdir(self.base):
            if not name.isdigit():
                continue  # TF Serving ignores dot-folders
            missing = incomplete_files(self.base / name)
            if missing:
                self.partial_seen.append(f"{name}: missing {', '.join(missing)}")
            elif missing is not None:
                complete += 1
        if complete == 0:
            self.moments_without_version += 1


@pytest.fixture(scope="module")
def killed_exports(training_run, published_base, data_dir, tmp_path_factory, logs_dir) -> dict[str, WatchedExport]:
    """Every kill point, each on its own copy of a base path holding version 1."""
    watched, threads = {}, []
    for index, kill_point in enumerate(KILL_POINTS):
        base = tmp_path_factory.mktemp(f"kill{index}") / "mnist"
        shutil.copytree(published_base, base)
        export = WatchedExport(kill_point, base, logs_dir / f"export-killed-{index}.log")
        # --republish: the same training run again, as version 2; --keep-versions 1: retention then
        # removes version 1, so there is a retention step to kill too.
        command = exporter_command(training_run.model_dir, data_dir, base, "--republish", "--keep-versions", "1")
        threads.append(threading.Thread(target=export.watch, args=(command,)))
        watched[kill_point] = export
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return watched


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_an_exporter_killed_at_this_step_never_shows_a_partial_version(killed_exports, kill_point):
    export = killed_exports[kill_point]
    versions = sorted(int(name) for name in os.listdir(export.base) if name.isdigit())
    record(
        "faults",
        f"exporter killed: {kill_point}",
        base_path_looks=export.looks,
        partial_versions_seen=len(export.partial_seen),
        killed=export.killed,
        seconds_to_kill=round(export.seconds_to_kill or 0, 2),
        versions_after=versions,
    )
    assert export.partial_seen == [], export.partial_seen[:5]
    assert export.moments_without_version == 0, "a moment with no complete version to serve"
    if kill_point in MAY_FINISH_FIRST and not export.killed:
        assert export.returncode == 0, export.log_path.read_text()[-2000:]
    else:
        assert export.killed and export.returncode == -signal.SIGKILL, export.log_path.read_text()[-2000:]
    # What is left: version 1 and/or a complete version 2, nothing else with a number.
    assert versions in ([1], [1, 2], [2])
    for version in versions:
        assert incomplete_files(export.base / str(version)) == []
