"""Where the browser tests find Chromium: the CHROMIUM setting, else /usr/bin/chromium, else
`chromium` or `chromium-browser` on PATH (Debian and Ubuntu name the binary differently)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

DEFAULT = "/usr/bin/chromium"
NAMES_ON_PATH = ("chromium", "chromium-browser")
HOW_TO_GET_IT = (
    "install it (Debian: apt-get install chromium) or set CHROMIUM=/path/to/chromium; "
    "PYTEST_ARGS='-m \"not browser\"' runs every other test without it"
)


class ChromiumMissing(RuntimeError):
    pass


def find_chromium(environ: Mapping[str, str] | None = None, default: str = DEFAULT) -> str:
    """The Chromium executable to drive, or ChromiumMissing saying where it was looked for."""
    environ = os.environ if environ is None else environ
    given = environ.get("CHROMIUM", "")
    if given:
        if os.access(given, os.X_OK) and not os.path.isdir(given):
            return given
        raise ChromiumMissing(f"CHROMIUM={given} is not an executable file: {HOW_TO_GET_IT}")
    if os.access(default, os.X_OK):
        return default
    for name in NAMES_ON_PATH:
        found = shutil.which(name, path=environ.get("PATH", ""))
        if found:
            return found
    raise ChromiumMissing(f"no Chromium at {default} nor as {' or '.join(NAMES_ON_PATH)} on PATH: {HOW_TO_GET_IT}")
