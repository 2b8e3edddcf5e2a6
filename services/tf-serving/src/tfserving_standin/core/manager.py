"""Versions of each model: polling the base path, loading, unloading, and finding the servable.

Mirrors TF Serving's file-system source plus its availability-preserving version policy: only
all-digit folder names are versions (the exporter stages in hidden folders and renames them into
place), the model's version policy picks the aspired versions, a new version is loaded (and
warmed up) before the old one is unloaded, and a version that fails to load is shown with its
error in the status API while the versions already loaded keep serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import logging

from mnist_common import storage
from mnist_common.pipeline import is_version_name
from tfserving_standin.core.batching import Batcher
from tfserving_standin.core.config import BatchingParameters, ModelConfig
from tfserving_standin.core.errors import invalid_argument, not_found
from tfserving_standin.core.servable import LoadError, Servable

log = logging.getLogger(__name__)


START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclasses.dataclass
class VersionState:
    version: int
    state: str = START
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None
    folder_marker: tuple | None = None  # folder listing when a load failed, to retry on change
    batchers: dict = dataclasses.field(default_factory=dict)


class ModelManager:
    def __init__(
        self,
        models: list[ModelConfig],
        batching: BatchingParameters | None,
        batch_executor: concurrent.futures.Executor,
        metrics=None,
        unbatched_threads: int = 2,
    ):
        self.models = {model.name: model for model in models}  # the source config in force
        # The label map in force (ServerCore's model_labels_to_versions_): set only by
        # server_core.ServerCore once a config's labels pass its check; None before the first.
        self.labels: dict[str, dict[str, int]] | None = None
        self._batching = batching
        self._batch_executor = batch_executor
        self._load_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="load")
        self._metrics = metrics
        self._unbatched_threads = unbatched_threads
        self._states: dict[str, dict[int, VersionState]] = {name: {} for name in self.models}
        self._poll_lock = asyncio.Lock()

    # ---- finding what answers a request ------------------------------------------------------

    def resolve(self, model_name: str, version: int | None = None, label: str | None = None) -> VersionState:
        """The AVAILABLE version a request names, or TF Serving's error for it."""
        states = self._states.get(model_name)
        if label is not None:
            if states is None:
                raise not_found(f"Servable not found for request: Latest({model_name})")
            version = self.version_for_label(model_name, label)
        if version is not None:
            state = (states or {}).get(version)
            if state is None or state.state != AVAILABLE:
                raise not_found(f"Servable not found for request: Specific({model_name}, {version})")
            return state
        available = [s for s in (states or {}).values() if s.state == AVAILABLE]
        if not available:
            raise not_found(f"Servable not found for request: Latest({model_name})")
        return max(available, key=lambda s: s.version)

    def status(self, model_name: str, version: int | None = None, label: str | None = None) -> list[VersionState]:
        """Version states for GetModelStatus, newest first, with TF Serving's errors."""
        states = self._states.get(model_name) or {}
        if label is not None:
            version = self.version_for_label(model_name, label)
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {model_name}")
            return [states[version]]
        if not states:
            raise not_found(f"Could not find any versions of model {model_name}")
        return [states[v] for v in sorted(states, reverse=True)]

    def batcher(self, state: VersionState, signature) -> Batcher:
        batcher = state.batchers.get(signature.name)
        if batcher is None:
            on_batch = None
            if self._metrics:
                on_batch = self._metrics.batch_observer(state.servable.model_name, state.version, signature.name)
            batcher = Batcher(
                signature, self._batching, self._batch_executor, on_batch, unbatched_threads=self._unbatched_threads
            )
            state.batchers[signature.name] = batcher
        return batcher

    def version_for_label(self, model_name: str, label: str) -> int:
        """ServerCore::GetModelVersionForLabel: the version the label map in force names."""
        version = (self.labels or {}).get(model_name, {}).get(label)
        if version is None:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return version

    def version_states(self, model_name: str) -> dict[int, str]:
        """{version: state} as ServableStateMonitor::GetVersionStates sees them now."""
        return {version: state.state for version, state in self._states.get(model_name, {}).items()}

    # ---- a new source config (ServerCore::AddModelsViaModelConfigList) --------------------------

    async def replace_models(self, models: list[ModelConfig]) -> None:
        """Serve these models from now on: versions the new policies add are loaded (and new
        models waited for), models left out are unloaded, versions no longer aspired are
        unloaded once an aspired one serves."""
        async with self._poll_lock:
            removed = [name for name in self.models if name not in {m.name for m in models}]
            self.models = {model.name: model for model in models}
            for model in models:
                self._states.setdefault(model.name, {})
                if self._metrics:
                    self._metrics.know(model.name)
            for name in removed:
                for state in list(self._states.get(name, {}).values()):
                    if state.state == AVAILABLE:
                        await self._unload(name, state)
        await self.poll_once()

    # ---- polling the base paths ----------------------------------------------------------------

    async def poll_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            await self.poll_once()

    async def poll_once(self) -> None:
        async with self._poll_lock:
            for model in self.models.values():
                try:
                    await self._poll_model(model)
                except Exception:  # noqa: BLE001 - a bad poll must not stop serving
                    log.exception("polling model %s failed", model.name)

    async def _poll_model(self, model: ModelConfig) -> None:
        if not await asyncio.to_thread(storage.exists, model.base_path):
            # FileSystemStoragePathSource: PollFileSystemForServable's error, logged by
            # PollFileSystemAndInvokeCallback; nothing is aspired or unaspired, so what is
            # loaded keeps serving.
            log.error(
                "FileSystemStoragePathSource encountered a filesystem access error: Could not find base path "
                "%s for servable %s with error NOT_FOUND: %s; No such file or directory",
                model.base_path,
                model.name,
                model.base_path,
            )
            return
        listing = await asyncio.to_thread(_list_versions, model.base_path)
        if not listing:
            log.warning(
                "No versions of servable %s found under base path %s. Did you forget to name your leaf "
                "directory as a number (eg. '/1/')?",
                model.name,
                model.base_path,
            )
            return  # the stand-in keeps what is loaded (see docs/serving-contract.md's fidelity table)
        aspired = model.policy.select(sorted(listing))
        states = self._states[model.name]
        for version in sorted(aspired, reverse=True):
            state = states.get(version)
            retry_failed = (
                state is not None
                and state.state == END
                and state.error_code != "OK"
                and state.folder_marker != listing[version]
            )
            unloaded_before = state is not None and state.state == END and state.error_code == "OK"
            if state is None or retry_failed or unloaded_before:
                await self._load(model, version, storage.join(model.base_path, str(version)), listing[version])
        # Unload versions no longer aspired, but only once an aspired version serves.
        if any(states[v].state == AVAILABLE for v in aspired if v in states):
            for version, state in list(states.items()):
                if version not in aspired and state.state == AVAILABLE:
                    await self._unload(model.name, state)

    async def _load(self, model: ModelConfig, version: int, path: str, marker) -> None:
        state = VersionState(version=version, state=LOADING)
        self._states[model.name][version] = state
        log.info("Loading servable: {name: %s version: %d} from %s", model.name, version, path)
        loop = asyncio.get_running_loop()
        try:
            servable = await loop.run_in_executor(self._load_executor, Servable.load, model.name, version, path)
        except LoadError as error:
            state.state, state.error_code, state.error_message = END, error.error_code, error.message
            state.folder_marker = marker
            log.error(
                "Loading servable: {name: %s version: %d} failed: %s: %s",
                model.name,
                version,
                error.error_code,
                error.message,
            )
            return
        state.servable = servable
        _settle_heap()
        state.state = AVAILABLE
        if self._metrics:
            self._metrics.set_available(model.name, version, True)
        log.info("Successfully loaded servable version {name: %s version: %d}", model.name, version)

    async def _unload(self, model_name: str, state: VersionState) -> None:
        state.state = UNLOADING  # resolve() stops handing it out; queued requests still finish
        log.info("Unloading servable version {name: %s version: %d}", model_name, state.version)
        for batcher in list(state.batchers.values()):
            await batcher.drain_and_close()
        state.batchers.clear()
        state.servable = None
        _settle_heap()
        state.state = END
        if self._metrics:
            self._metrics.set_available(model_name, state.version, False)

    async def close(self) -> None:
        for _name, states in self._states.items():
            for state in states.values():
                for batcher in list(state.batchers.values()):
                    await batcher.drain_and_close()
        self._load_executor.shutdown(wait=False, cancel_futures=True)


def _settle_heap() -> None:
    """Collect once, then exempt every object alive now from later garbage collections.

    TensorFlow and a loaded SavedModel leave a few hundred thousand long-lived Python objects, and
    each full collection walks them all: 100-250 ms with the whole process stopped, which came
    every few seconds under load and was the p99 of the REST benchmark. Frozen, they are no longer
    walked. Called when a version is loaded or unloaded (not on a request): unfreezing first lets
    the collection reclaim the cycles an unloaded version left, so versions coming and going
    leak nothing.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _list_versions(base_path: str) -> dict[int, tuple]:
    """{version: marker} for the all-digit folders; the marker changes when a folder's content does."""
    try:
        names = storage.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    versions = {}
    for name in names:
        if not is_version_name(name):
            continue
        path = storage.join(base_path, name)
        if not storage.isdir(path):
            continue
        try:
            marker = tuple(sorted(storage.listdir(path)))
        except OSError:
            marker = ()
        versions[int(name)] = marker
    return versions
