"""--model_config_file_poll_wait_seconds: re-reading the model config file while serving.

Every interval the file is read; when its bytes differ from the config in force (or from the
last one refused), it is parsed and checked, and applied or refused as TF Serving does: a file
that does not parse, that adds or removes models, or whose version label names a version that is
not AVAILABLE is refused with an error line saying why, and the config in force keeps serving.
An applied config changes the labels at once; versions it adds or drops are loaded and unloaded
by the same steps as a new version folder (the new one serves before the old one goes).
"""

from __future__ import annotations

import asyncio
import logging

from mnist_common import storage
from tfserving_standin.core.config import ConfigError, ModelConfig, load_model_config_file, resolve_local
from tfserving_standin.core.manager import ModelManager

log = logging.getLogger(__name__)


def load_resolved(path: str) -> list[ModelConfig]:
    """The file's model configs with local base paths made absolute, as at start-up."""
    return [ModelConfig(m.name, resolve_local(m.base_path), m.policy, m.labels) for m in load_model_config_file(path)]


class ConfigReloader:
    def __init__(self, manager: ModelManager, path: str, allow_unavailable_labels: bool = False):
        self._manager = manager
        self._path = path
        self._allow_unavailable = allow_unavailable_labels
        self._seen = _read(path)  # the bytes in force at start-up

    async def watch_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.check_once()
            except Exception:  # noqa: BLE001 - a bad reload must not stop serving
                log.exception("re-reading %s failed", self._path)

    async def check_once(self) -> bool:
        """Apply the file if it changed and can be applied; True when a new config was applied."""
        raw = await asyncio.to_thread(_read, self._path)
        if raw is None or raw == self._seen:
            return False
        self._seen = raw  # refused or applied, it is not looked at again until it changes
        try:
            models = await asyncio.to_thread(load_resolved, self._path)
        except ConfigError as error:
            self._refuse(str(error))
            return False
        names, current = {m.name for m in models}, set(self._manager.models)
        if names != current:
            self._refuse(
                f"the stand-in does not add or remove models while running "
                f"(serving {', '.join(sorted(current))}; the file has {', '.join(sorted(names))})"
            )
            return False
        problems = self._manager.label_problems(models, self._allow_unavailable)
        if problems:
            self._refuse("; ".join(problems))
            return False
        await self._manager.replace_models(models)
        described = "; ".join(
            f"{m.name}: {m.policy.kind} {list(m.policy.versions) if m.policy.kind == 'specific' else ''}".rstrip()
            + (f" labels {dict(sorted(m.labels.items()))}" if m.labels else "")
            for m in models
        )
        log.info("Applied the new model config from %s (%s)", self._path, described)
        return True

    def _refuse(self, why: str) -> None:
        log.error("Refused the new model config in %s, the previous config keeps serving: %s", self._path, why)


def _read(path: str) -> bytes | None:
    try:
        return storage.read_bytes(path)
    except OSError:
        return None  # mid-replace or briefly missing: look again at the next poll
