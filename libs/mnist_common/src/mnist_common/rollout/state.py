"""The rollout state file: which version is stable, which is the canary, and the canary's share.

    {"schema": 1, "generation": 4, "stable": 3, "canary": 4, "canary_percent": 10,
     "previous_stable": 2, "updated_at": "2026-12-02T17:30:00Z"}

`generation` counts the writes, so a reader can tell one state from the next. The file is written
whole to a temporary file and renamed into place (storage.write_bytes_atomic): a reader sees the
old state or the new one, never half of one. Reading checks every field and names the file and
the field in the error.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import reprlib

from mnist_common import storage

SCHEMA = 1


class RolloutStateError(ValueError):
    """The rollout state file is missing, unreadable or not of the schema; the message names it."""


@dataclasses.dataclass(frozen=True)
class RolloutState:
    stable: int
    canary: int | None = None
    canary_percent: float = 0.0
    previous_stable: int | None = None
    generation: int = 0
    updated_at: str = ""

    def __post_init__(self):
        check(self)

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions this state serves: stable, and the canary when there is one."""
        return (self.stable,) if self.canary is None else (self.stable, self.canary)

    def describe(self) -> str:
        if self.canary is None:
            return f"stable v{self.stable} at 100 %, no canary"
        return f"stable v{self.stable} at {100 - self.canary_percent:g} %, canary v{self.canary} at {self.canary_percent:g} %"

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"schema": SCHEMA}


def _shown(value) -> str:
    """A value for an error message: cut short, however large or deeply nested the file made it."""
    return reprlib.repr(value)


def _is_version(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check(state: RolloutState) -> None:
    if not _is_version(state.stable):
        raise RolloutStateError(f"stable must be a version number >= 1, not {_shown(state.stable)}")
    for name in ("canary", "previous_stable"):
        value = getattr(state, name)
        if value is not None and not _is_version(value):
            raise RolloutStateError(f"{name} must be a version number >= 1 or null, not {_shown(value)}")
    percent = state.canary_percent
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise RolloutStateError(f"canary_percent must be a number from 0 to 100, not {_shown(percent)}")
    if state.canary is None and percent != 0:
        raise RolloutStateError(f"canary_percent is {percent:g} but there is no canary")
    if state.canary is not None and state.canary == state.stable:
        raise RolloutStateError(f"canary v{state.canary} is also the stable version")


_FIELDS = {"schema", "generation", "stable", "canary", "canary_percent", "previous_stable", "updated_at"}


def from_json(data, source: str) -> RolloutState:
    if not isinstance(data, dict):
        raise RolloutStateError(f"{source}: expected a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise RolloutStateError(f"{source}: unknown field(s) {', '.join(unknown)}")
    if data.get("schema") != SCHEMA:
        raise RolloutStateError(f"{source}: schema must be {SCHEMA}, not {_shown(data.get('schema'))}")
    if "stable" not in data:
        raise RolloutStateError(f"{source}: the field stable is missing")
    generation = data.get("generation", 0)
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise RolloutStateError(f"{source}: generation must be an integer >= 0, not {_shown(generation)}")
    try:
        return RolloutState(
            stable=data["stable"],
            canary=data.get("canary"),
            canary_percent=data.get("canary_percent", 0),
            previous_stable=data.get("previous_stable"),
            generation=generation,
            updated_at=_text(data.get("updated_at", ""), "updated_at"),
        )
    except RolloutStateError as error:
        raise RolloutStateError(f"{source}: {error}") from None


def _text(value, name: str) -> str:
    # str() of a deeply nested list would recurse as deep as the nesting.
    if not isinstance(value, str):
        raise RolloutStateError(f"{name} must be a string, not {type(value).__name__}")
    return value


# A state is a few hundred bytes; a file much larger than this is not one (and is not parsed).
MAX_STATE_BYTES = 64 << 10


def parse(raw: bytes, source: str) -> RolloutState:
    if len(raw) > MAX_STATE_BYTES:
        raise RolloutStateError(f"{source}: {len(raw)} bytes; a rollout state is at most {MAX_STATE_BYTES}")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise RolloutStateError(f"{source}: not JSON of the schema: it nests deeper than the parser goes") from None
    except ValueError as error:
        raise RolloutStateError(f"{source}: not JSON: {error}") from None
    return from_json(data, source)


def read(path: str) -> RolloutState | None:
    """The state in `path`, or None when there is no such file (no rollout yet)."""
    try:
        raw = storage.read_bytes(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise RolloutStateError(f"{path}: cannot read: {error}") from None
    return parse(raw, path)


def write(path: str, state: RolloutState, previous: RolloutState | None) -> RolloutState:
    """Write `state` as the next generation after `previous`; returns what was written."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamped = dataclasses.replace(state, generation=(previous.generation + 1) if previous else 1, updated_at=now)
    storage.write_bytes_atomic(path, (json.dumps(stamped.to_json(), indent=2, sort_keys=True) + "\n").encode())
    return stamped
