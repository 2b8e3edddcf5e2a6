"""The errors `mnist-deploy` turns into a message and an exit code (never a stack trace)."""


class DeployError(Exception):
    """Something the user can fix (missing tool, setting, cluster access): exit code 2."""

    exit_code = 2


class StageFailed(DeployError):
    """A workload failed or did not become ready in time: exit code 1."""

    exit_code = 1


class Conflict(DeployError):
    """The API server refused a create or replace because the object changed or exists (409):
    someone else got there first."""
