"""The traffic split: each predict goes to the `stable` or the `canary` version label.

The split is read from the rollout state file (ROLLOUT_FILE, written by `make canary` /
`promote` / `rollback`), re-read when it changes, looked at no more often than every
ROLLOUT_POLL_SECONDS; a file that cannot be read or fails its schema check is logged and the
split in force stays. Without ROLLOUT_FILE no label is sent and the model server answers with
its default version (the `latest` policy).

Each request is drawn on its own (not sticky per browser session): the API's clients (scripts,
load tests, the page's fetches) carry no session, the share of answers matches the configured
percentage over any stretch of traffic, and the answer says which version and label replied.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time

from mnist_common.rollout import state as rollout_state
from mnist_common.rollout.model_config import CANARY, STABLE

log = logging.getLogger(__name__)


class RolloutView:
    def __init__(self, path: str, poll_seconds: float = 1.0, clock=time.monotonic):
        self.path = path
        self.poll_seconds = poll_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state: rollout_state.RolloutState | None = None
        self._stamp = None  # (mtime_ns, size, inode) of the file the state came from
        self._next_check = 0.0
        self._refresh()

    def current(self) -> rollout_state.RolloutState | None:
        if self._clock() >= self._next_check:
            with self._lock:
                if self._clock() >= self._next_check:
                    self._refresh()
        return self._state

    def _refresh(self) -> None:
        self._next_check = self._clock() + self.poll_seconds
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            if self._state is not None:
                log.warning("rollout state %s is gone; keeping %s", self.path, self._state.describe())
            return
        except OSError as error:
            log.warning("rollout state %s: cannot stat: %s", self.path, error)
            return
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp == self._stamp:
            return
        try:
            state = rollout_state.read(self.path)
        except rollout_state.RolloutStateError as error:
            log.error("rollout state not applied, the split in force stays: %s", error)
            self._stamp = stamp  # not read again until it changes
            return
        except Exception as error:  # noqa: BLE001 - whatever the file holds, predicts go on
            log.error(
                "rollout state %s not applied, the split in force stays: cannot be read (%s)",
                self.path,
                type(error).__name__,
            )
            self._stamp = stamp
            return
        self._stamp = stamp
        if state is not None and state != self._state:
            log.info("rollout: %s (generation %d)", state.describe(), state.generation)
            self._state = state


def choose(state: rollout_state.RolloutState | None, draw=random.random) -> tuple[str | None, int | None]:
    """(label, version it names) for one request; (None, None) without a rollout."""
    if state is None:
        return None, None
    if state.canary is not None and draw() * 100 < state.canary_percent:
        return CANARY, state.canary
    return STABLE, state.stable
