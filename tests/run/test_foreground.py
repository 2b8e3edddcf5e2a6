"""`mnist-run foreground`, the runner of make's servers: a stop asked for is exit 0, signals reach
the command, and TensorFlow's start-up lines are dropped from its stderr unless VERBOSE=1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from mnist_common.quiet_start import startup_noise

# What TensorFlow 2.21 prints while loading on a machine without a GPU (this machine's lines).
TF_STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796687287.639102    1859 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors from different computation "
    "orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796687287.639432    1859 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "I0000 00:00:1796687287.952264    1859 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in other "
    "operations, rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796687396.246233    3564 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
]
KEPT = [
    "2026-12-07 23:50:32,519 INFO tfserving_standin.core.manager: Successfully loaded servable version",
    "E0000 00:00:1796687396.246233    3564 some_kernel.cc:52] a real error is kept",
    "Traceback (most recent call last):",
]


def foreground(*command: str, env: dict | None = None, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_run.cli", "foreground", "--", *command],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def test_the_startup_lines_are_recognised_and_nothing_else():
    assert all(startup_noise(line) for line in TF_STARTUP)
    assert not any(startup_noise(line) for line in KEPT)


def test_the_command_s_stderr_loses_only_the_startup_lines():
    script = "import sys\nfor line in sys.argv[1:]: print(line, file=sys.stderr)"
    quiet = os.environ.copy()
    for name in ("VERBOSE", "LOG_LEVEL"):
        quiet.pop(name, None)
    done = foreground(sys.executable, "-c", script, *TF_STARTUP, *KEPT, env=quiet)
    _, stderr = done.communicate(timeout=60)
    assert stderr.splitlines() == KEPT
    verbose = foreground(sys.executable, "-c", script, *TF_STARTUP, env={"VERBOSE": "1"})
    _, stderr = verbose.communicate(timeout=60)
    assert stderr.splitlines() == TF_STARTUP


def test_a_stop_asked_for_is_exit_0_and_a_failure_keeps_its_code():
    for code in (0, 130, 143):
        assert foreground(sys.executable, "-c", f"raise SystemExit({code})").wait(timeout=60) == 0
    assert foreground(sys.executable, "-c", "raise SystemExit(3)").wait(timeout=60) == 3
    killed = foreground(sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.wait(timeout=60) == 128 + signal.SIGKILL


def test_sigterm_to_the_runner_reaches_the_command():
    # What make does on SIGTERM: it signals its recipe, the runner, which passes it on.
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (print('stopping', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    runner = foreground(sys.executable, "-c", script, start_new_session=True)
    assert runner.stdout.readline().strip() == "ready"  # the handshake
    runner.send_signal(signal.SIGTERM)
    assert runner.stdout.readline().strip() == "stopping"
    assert runner.wait(timeout=60) == 0
