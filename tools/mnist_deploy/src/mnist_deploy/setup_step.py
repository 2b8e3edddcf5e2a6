"""One step of the one-time Google Cloud setup: what bootstrap.py plans and gcloud_runner.py runs.
Its own module so that the plan and the runner both import it and neither imports the other's
module for it (bootstrap's main runs the plan with gcloud_runner)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing the setup makes. `check` exits 0 when it exists; with `expect`, its output must
    also hold that line (gcloud lists exit 0 when nothing matches). No check: always run (the
    command is idempotent and only writes local config). No delete: gke-down keeps it (`kept`
    says why)."""

    name: str
    why: str
    create: tuple[str, ...]
    check: tuple[str, ...] | None = None
    expect: str | None = None
    delete: tuple[str, ...] | None = None
    kept: str = ""
    storage: bool = False  # deleted only with --delete-storage
