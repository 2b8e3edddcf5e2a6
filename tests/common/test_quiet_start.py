"""mnist_common.quiet_start: TensorFlow loads without its start-up lines unless VERBOSE=1 or a
LOG_LEVEL asks for them; anything else written meanwhile still reaches stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnist_common.quiet_start import startup_noise, verbose

PROGRAM = """
import sys
from mnist_common.quiet_start import quiet_tensorflow
quiet_tensorflow()
import tensorflow as tf
tf.constant(1) + 1
print("still said", file=sys.stderr)
"""


def load_tensorflow(**settings) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VERBOSE", "LOG_LEVEL", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env={**env, **settings}, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, False), ({"VERBOSE": "0"}, False), ({"VERBOSE": "1"}, True), ({"LOG_LEVEL": "DEBUG"}, True)],
)
def test_what_asks_for_every_line(environ, expected):
    assert verbose(environ) is expected


@pytest.mark.slow
def test_tensorflow_loads_quietly_and_verbose_shows_its_lines_again():
    quiet = load_tensorflow()
    assert "still said" in quiet
    assert not [line for line in quiet if startup_noise(line)], quiet
    loud = load_tensorflow(VERBOSE="1")
    assert any(startup_noise(line) for line in loud), loud  # TensorFlow 2.21 does print them here
