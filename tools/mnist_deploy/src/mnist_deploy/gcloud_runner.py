"""Runs the steps of mnist_deploy.bootstrap with gcloud/kubectl: check, then create only what is
missing (up) or delete only what exists (down). Failures are read from the command's exit status
and stderr and turned into a message that says what is missing (login, billing, an API, a
permission); a dry run prints every command and runs none."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

from mnist_deploy.errors import DeployError, StageFailed
from mnist_deploy.setup_step import Step

CHECK_TIMEOUT_SECONDS = 300
INSTALL_GCLOUD = "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
# gcloud and kubectl say "missing" in these words (gcloud: the API's NOT_FOUND / HTTP 404);
# the codes as whole words, so a project number holding the digits is no match.
NOT_FOUND = re.compile(r"not_found|not found|does not exist|\b404\b")
DENIED = re.compile(r"permission_denied|does not have permission|forbidden|\b403\b")


def _first_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("ERROR")), lines[0] if lines else "(no message)")


def set_up_problem(step: Step, stderr: str) -> DeployError | None:
    """The user-fixable cause of a failed command, or None when stderr names none of them."""
    text = stderr.lower()
    said = _first_line(stderr)
    if "active account" in text or "gcloud auth login" in text or "reauthentication" in text:
        return DeployError(f"{step.name}: gcloud is not logged in: run 'gcloud auth login' ({said})")
    if "billing" in text:
        return DeployError(
            f"{step.name}: billing is not enabled for the project: link a billing account "
            f"(gcloud billing projects link PROJECT --billing-account=ACCOUNT) ({said})"
        )
    if "service_disabled" in text or "has not been used in project" in text:
        return DeployError(f"{step.name}: an API it needs is disabled: make gke-up enables them first ({said})")
    if DENIED.search(text):
        return DeployError(
            f"{step.name}: permission denied: the account needs a role that allows this "
            f"(e.g. roles/owner, or the service's admin role) ({said})"
        )
    return None


class Runner:
    def __init__(self, dry_run: bool = False, out=sys.stdout) -> None:
        self.dry_run = dry_run
        self.out = out
        self.env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _run(self, step: Step, command: tuple[str, ...], timeout: float | None) -> subprocess.CompletedProcess:
        if shutil.which(command[0], path=self.env.get("PATH")) is None:
            hint = INSTALL_GCLOUD if command[0] == "gcloud" else "run 'make setup' (kubectl comes from the lock)"
            raise DeployError(f"'{command[0]}' not found: {hint}")
        try:
            return subprocess.run(
                command, capture_output=True, text=True, env=self.env, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise StageFailed(f"{step.name}: {shlex.join(command)} did not answer in {timeout:.0f} s") from None

    def exists(self, step: Step) -> bool:
        """Run the step's check: True when it exists, False when the command says it is missing."""
        if step.check is None:
            return False
        result = self._run(step, step.check, CHECK_TIMEOUT_SECONDS)
        if result.returncode == 0:
            return step.expect is None or step.expect in result.stdout.split()
        problem = set_up_problem(step, result.stderr)
        if problem:
            raise problem
        if NOT_FOUND.search(result.stderr.lower()):
            return False
        raise StageFailed(f"{step.name}: checking failed: {shlex.join(step.check)}\n{result.stderr.strip()}")

    def execute(self, step: Step, command: tuple[str, ...]) -> None:
        result = self._run(step, command, None)
        if result.returncode != 0:
            raise set_up_problem(step, result.stderr) or StageFailed(
                f"{step.name}: {shlex.join(command)} failed (exit {result.returncode}):\n{result.stderr.strip()}"
            )

    def print_plan(self, steps: list[Step], action: str) -> None:
        for step in steps:
            self.say(f"# {step.name}: {step.why}")
            if step.check:
                self.say(f"  check:  {shlex.join(step.check)}" + (f"   (expect {step.expect})" if step.expect else ""))
            command = step.create if action == "create" else step.delete
            if command:
                self.say(f"  {action}: {shlex.join(command)}")

    def require(self, checks: list[Step]) -> None:
        """The preflight: a failing one is a set-up problem whatever the command said."""
        if shutil.which("gcloud", path=self.env.get("PATH")) is None:
            raise DeployError(f"'gcloud' not found: {INSTALL_GCLOUD}")
        for step in checks:
            if not self.exists(step):
                if step.expect == "True":
                    raise DeployError(
                        f"{step.name}: billing is disabled: link a billing account "
                        "(gcloud billing projects link PROJECT --billing-account=ACCOUNT)"
                    )
                raise DeployError(
                    f"{step.name}: not found, or this account may not see it "
                    "(gcloud config list shows the account; the project ID, not its name)"
                )

    def up(self, preflight: list[Step], steps: list[Step]) -> None:
        if self.dry_run:
            self.say("# dry run: nothing is run; these are the checks and what each step creates if missing")
            self.print_plan(preflight + steps, "create")
            return
        self.require(preflight)
        for step in steps:
            if self.exists(step):
                self.say(f"exists   {step.name}")
                continue
            self.say(f"create   {step.name}")
            self.execute(step, step.create)
        self.say("done: the project is ready for make images push deploy OVERLAY=gke")

    def down(self, preflight: list[Step], steps: list[Step], kept: list[Step]) -> None:
        if self.dry_run:
            self.say("# dry run: nothing is run; these are the checks and what each step deletes if present")
            self.print_plan(preflight + steps, "delete")
        else:
            self.require(preflight)
            for step in steps:
                if not self.exists(step):
                    self.say(f"gone     {step.name}")
                    continue
                self.say(f"delete   {step.name}")
                self.execute(step, step.delete)
        for step in kept:
            self.say(
                f"kept     {step.name}: {step.kept or 'its data stays; make gke-down DELETE_STORAGE=1 deletes it'}"
            )
