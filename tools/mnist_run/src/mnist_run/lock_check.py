"""Does a venv hold exactly what the lock pins? The last step of `make setup`, whichever installer ran.

`make setup` installs with uv by default (INSTALLER=uv), a drop-in for pip that installs the same
lock from its cache in a fraction of pip's time; both honour `-c requirements/constraints.txt`,
and this check makes sure of it: every distribution in the venv, except the editable packages of
this repository and the installers' own pip and wheel (which `make lock` leaves out too), must be
in the lock at the same version. Standard library only, run with the venv's python:

    .venv/bin/python -m mnist_run.lock_check requirements/constraints.txt

Exit codes: 0 the venv matches the lock; 1 it does not (each difference named); 2 the lock cannot
be read.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata

# Installed but not pinned: the installers' own tools, as `make lock` writes the lock.
NOT_PINNED = {"pip", "wheel"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def normalized(name: str) -> str:
    """PEP 503's name normalization: Foo_Bar and foo-bar are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: str) -> dict[str, str]:
    pins = {}
    with open(path, encoding="utf-8") as lock:
        for line in lock:
            match = _PIN.match(line.strip())
            if match:
                pins[normalized(match.group(1))] = match.group(2)
    return pins


def _is_editable(distribution: metadata.Distribution) -> bool:
    text = distribution.read_text("direct_url.json")
    if not text:
        return False
    try:
        return bool(json.loads(text).get("dir_info", {}).get("editable"))
    except ValueError:
        return False


def differences(pins: dict[str, str], distributions) -> list[str]:
    found = []
    for distribution in distributions:
        name = normalized(distribution.metadata["Name"] or "")
        if not name or name in NOT_PINNED or _is_editable(distribution):
            continue
        pinned = pins.get(name)
        if pinned is None:
            found.append(f"{name} {distribution.version} is installed but not in the lock")
        elif pinned != distribution.version:
            found.append(f"{name} {distribution.version} is installed, the lock pins {pinned}")
    return sorted(set(found))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mnist_run.lock_check CONSTRAINTS_FILE", file=sys.stderr)
        return 2
    try:
        pins = read_pins(args[0])
    except OSError as error:
        print(f"error: cannot read the lock {args[0]}: {error.strerror}", file=sys.stderr)
        return 2
    found = differences(pins, metadata.distributions())
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if found:
        print(f"error: the venv at {sys.prefix} does not match {args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
