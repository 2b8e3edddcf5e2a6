"""--model_config_file_poll_wait_seconds: Server::PollFilesystemAndReloadConfig
(tensorflow_serving/model_servers/server.cc).

Every interval the file is read and parsed and handed to ServerCore::ReloadConfig
(server_core.py), changed or not, as TF Serving does: a file that does not parse is logged as
"Failed to read ModelServerConfig file: ...", a config ReloadConfig refuses as
"PollFilesystemAndReloadConfig failed to ReloadConfig: ...", and the config in force keeps
serving. A refused config stays stored, so each later poll of the same file logs the same error.
"""

from __future__ import annotations

import asyncio
import logging

from tfserving_standin.core.config import ConfigError, ModelConfig, load_model_config_file, resolve_local
from tfserving_standin.core.errors import ServingError
from tfserving_standin.core.server_core import ServerCore

log = logging.getLogger(__name__)


def load_resolved(path: str) -> list[ModelConfig]:
    """The file's model configs with local base paths made absolute, as at start-up."""
    return [ModelConfig(m.name, resolve_local(m.base_path), m.policy, m.labels) for m in load_model_config_file(path)]


class ConfigReloader:
    def __init__(self, core: ServerCore, path: str):
        self._core = core
        self._path = path

    async def watch_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.check_once()
            except Exception:  # noqa: BLE001 - a bad reload must not stop serving
                log.exception("re-reading %s failed", self._path)

    async def check_once(self) -> bool:
        """One PollFilesystemAndReloadConfig; True when the versions or labels in force changed."""
        try:
            models = await asyncio.to_thread(load_resolved, self._path)
        except ConfigError as error:
            log.error("Failed to read ModelServerConfig file: %s", error)
            return False
        try:
            changed = await self._core.reload_config(models)
        except ServingError as error:
            log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error.message)
            return False
        if changed:
            described = "; ".join(
                f"{m.name}: {m.policy.kind} {list(m.policy.versions) if m.policy.kind == 'specific' else ''}".rstrip()
                + (f" labels {dict(sorted(m.labels.items()))}" if m.labels else "")
                for m in models
            )
            log.info("Finished reloading config %s (%s)", self._path, described)
        return changed
