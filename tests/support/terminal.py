"""A command in a pseudo-terminal of its own, as a person runs it: Ctrl-C is the byte 0x03 typed
into the terminal, which the kernel's line discipline turns into SIGINT for the terminal's
foreground process group, exactly as in a real terminal."""

from __future__ import annotations

import errno
import os
import pty
import re
import select
import signal
import time


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: str):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session of its own with the terminal as its controlling tty
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.output = ""
        self.status: int | None = None

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_exc) -> None:
        """Whatever happened in the test, nothing it started outlives it."""
        if self.status is None:
            self.kill_everything()

    def kill_everything(self) -> None:
        groups = {self.pid}
        try:
            groups.add(os.tcgetpgrp(self.fd))  # the server's own group, when make gave it the terminal
        except OSError:
            pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(self.pid, 0)
        self.status = os.waitstatus_to_exitcode(status)
        os.close(self.fd)

    def _read(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False at the end of the output."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as error:  # EIO: every process holding the terminal has gone
            if error.errno == errno.EIO:
                return False
            raise
        if not chunk:
            return False
        self.output += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The handshake: block until the output shows `pattern` (a regular expression)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output, re.MULTILINE)
            if found:
                return found
            if not self._read(0.5):
                break
        raise AssertionError(f"no {pattern!r} within {timeout} s; output:\n{self.output[-4000:]}")

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def foreground_group(self) -> int:
        return os.tcgetpgrp(self.fd)

    def finish(self, timeout: float) -> int:
        """Read to the end, reap the process, and return its exit code (-N: killed by signal N)."""
        deadline = time.monotonic() + timeout
        open_ = True
        while time.monotonic() < deadline:
            open_ = open_ and self._read(0.5)
            if not open_:
                time.sleep(0.05)  # the terminal is closed: only the reaping is left
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while open_ and self._read(0.2) and time.monotonic() < deadline:
                    pass
                self.status = os.waitstatus_to_exitcode(status)
                break
        if self.status is None:
            self.kill_everything()
            raise AssertionError(f"still running after {timeout} s; output:\n{self.output[-4000:]}")
        os.close(self.fd)
        return self.status
