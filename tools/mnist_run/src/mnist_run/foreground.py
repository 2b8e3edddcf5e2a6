"""`mnist-run foreground -- COMMAND ...`: run a server for make so that stopping it is not an error.

Ctrl-C in a terminal signals the whole foreground process group: make as well as the server.
GNU make answers SIGINT by waiting for its recipe and then killing itself with the same signal,
so `make run` ended with `make: *** [run] Error 130` however cleanly the servers stopped. Here
the command gets a process group of its own and, when make runs in a terminal's foreground, the
terminal too (as a shell gives a job): Ctrl-C then reaches the command alone, which stops, and
make sees this recipe end with exit 0.

Without a terminal (under honcho, CI, a test's pipe), the command stays in make's process group,
so a signal to the group (honcho stopping an entry, SIGKILL after it) still reaches everything.
A SIGINT, SIGTERM or SIGHUP this process receives itself (make forwards SIGTERM to its recipe)
is passed on to the command. A command that ends by SIGINT or SIGTERM, or with their exit codes
130 and 143, was stopped as asked: exit 0. (A SIGTERM sent to make itself still ends make with
143: GNU make re-raises it after its recipe ends, whatever the recipe returns.)

Quiet by default: unless VERBOSE=1 or a LOG_LEVEL is set, the command's stderr passes through a
filter that drops TensorFlow's start-up lines (mnist_common.quiet_start), for the command and
every process it starts (the model server loads versions in processes of its own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

from mnist_common.quiet_start import startup_noise, verbose

STOPPED_AS_ASKED = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _terminal() -> int | None:
    """stdin's terminal, if this process runs in its foreground process group."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except (OSError, ValueError):
        pass
    return None


def _give_terminal(fd: int, pgid: int) -> None:
    # A background group may not take the terminal: SIGTTOU would stop this process, so it is
    # ignored for the call (as shells do).
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, pgid)
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _pass_stderr_on(stream) -> None:
    """Each line the command writes to stderr, except TensorFlow's start-up lines."""
    for line in iter(stream.readline, b""):
        if not startup_noise(line.decode("utf-8", "replace").rstrip("\r\n")):
            sys.stderr.buffer.write(line)
            sys.stderr.buffer.flush()


def run(command: list[str]) -> int:
    terminal = _terminal()
    quiet = not verbose()
    child = subprocess.Popen(
        command,
        process_group=0 if terminal is not None else None,
        stderr=subprocess.PIPE if quiet else None,
    )
    relay = threading.Thread(target=_pass_stderr_on, args=(child.stderr,), daemon=True) if quiet else None
    if relay is not None:
        relay.start()
    if terminal is not None:
        _give_terminal(terminal, child.pid)

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            if terminal is not None:
                os.killpg(child.pid, signum)
            else:
                child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if terminal is not None:
            _give_terminal(terminal, os.getpgrp())
    if relay is not None:
        relay.join(timeout=5)  # what the command wrote last; a process it left behind may keep the pipe
    if code in STOPPED_AS_ASKED:
        return 0
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says it
