"""Reading a setting from the environment under its one name, or under a name it used to have.

Each setting has one name across make, the services and the tests. A renamed setting still
works under its old name for one release, with a warning on stderr that names the new one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO


def deprecation_message(old: str, new: str) -> str:
    return f"warning: {old} is deprecated and will stop working in the next release: use {new}"


def read_setting(
    name: str,
    *old_names: str,
    default: str | None = None,
    environ: Mapping[str, str] | None = None,
    warnings: TextIO | None = None,
) -> str | None:
    """The value of `name`, else of the first old name set (warning that it is deprecated), else
    `default`. An empty value counts as not set, as make passes unset variables as empty."""
    environ = os.environ if environ is None else environ
    if environ.get(name, "") != "":
        return environ[name]
    for old in old_names:
        if environ.get(old, "") != "":
            print(deprecation_message(old, name), file=warnings or sys.stderr, flush=True)
            return environ[old]
    return default
