"""The two ways an export can be refused, each with its own exit code.

InputError  (exit 2): a flag is wrong, or the trainer output / data set is missing or corrupt.
GateFailure (exit 3): the model was exported but failed a validation check; nothing published.
"""

from __future__ import annotations

EXIT_INPUT_ERROR = 2
EXIT_GATE_FAILURE = 3


class InputError(Exception):
    """A bad flag, or a missing or corrupt input; the message names the flag or file."""


class GateFailure(Exception):
    """The exported model failed one or more checks of the validation gate."""

    def __init__(self, failed_checks: list[str]):
        self.failed_checks = list(failed_checks)
        super().__init__("validation gate failed: " + "; ".join(self.failed_checks))


class PublishConflict(Exception):
    """The version folder appeared while we were publishing (another exporter ran at once)."""
