"""ServerCore::ReloadConfig's order and rules (tensorflow_serving/model_servers/server_core.cc).

At start-up (ServerCore::Create) and at every --model_config_file poll, TF Serving:
  1. accepts the transition (one model_config_list to another) and validates the list
     (ValidateModelConfigList: unique names);
  2. stores the new config as the one in force (`config_ = new_config`), whatever follows;
  3. UpdateModelVersionLabelMap(): every label must name a version that is AVAILABLE right now,
     unless --allow_version_labels_for_unavailable_models, and even with that flag a label that
     already exists may not move to a version that is not AVAILABLE. A refusal returns here:
     the label map in force stays, and the new versions are never asked for;
  4. AddModelsViaModelConfigList(): the new version policies reach the file-system source, which
     loads what they add and unloads (availability first) what they drop; models new to the
     config are waited for.
Because the refused config was stored, the next poll of the same file is "the same config" and
goes through step 3 again: it fails the same way until the file changes. At start-up nothing is
loaded yet, so step 3 refuses any label without the flag, and the server does not start.
"""

from __future__ import annotations

import logging

from tfserving_standin.core.config import ModelConfig
from tfserving_standin.core.errors import ServingError, failed_precondition, invalid_argument
from tfserving_standin.core.manager import AVAILABLE, ModelManager

log = logging.getLogger(__name__)


def status_text(error: ServingError) -> str:
    """absl::Status::ToString(): what TF Serving prints for a status (`<< status`)."""
    return f"{error.code_name}: {error.message}"


class ServerCore:
    def __init__(self, manager: ModelManager, allow_version_labels_for_unavailable_models: bool = False):
        self._manager = manager
        self._allow_unavailable = allow_version_labels_for_unavailable_models
        self.config: list[ModelConfig] | None = None  # config_: the last config accepted, applied or not
        self._applied_labels: dict[str, dict[str, int]] | None = None

    async def reload_config(self, models: list[ModelConfig]) -> bool:
        """ServerCore::ReloadConfig; raises ServingError with TF Serving's code and message.
        True when the versions or labels in force changed."""
        _validate_model_config_list(models)
        self.config = list(models)  # stored before the label check, as upstream
        labels = self._updated_label_map(models)
        self._manager.labels = labels
        applied = {m.name: m for m in models}
        if applied == self._manager.models and labels == self._applied_labels:
            return False  # the same config again: nothing to load or unload
        log.info("Adding/updating models.")
        await self._manager.replace_models(models)
        self._applied_labels = labels
        log.info("Finished adding/updating models")
        return True

    def _updated_label_map(self, models: list[ModelConfig]) -> dict[str, dict[str, int]]:
        """ServerCore::UpdateModelVersionLabelMap: the new label map, or FAILED_PRECONDITION."""
        in_force = self._manager.labels  # None before the first config: every label is new
        new: dict[str, dict[str, int]] = {}
        for model in models:
            states = self._manager.version_states(model.name)
            for label, version in model.labels.items():
                allow_any = False
                if self._allow_unavailable:
                    existing = None if in_force is None else in_force.get(model.name, {}).get(label)
                    allow_any = existing is None or existing == version
                if not allow_any and states.get(version) != AVAILABLE:
                    raise failed_precondition(
                        f"Request to assign label to version {version} of model {model.name}, "
                        "which is not currently available for inference"
                    )
                new.setdefault(model.name, {})[label] = version
        return new


def _validate_model_config_list(models: list[ModelConfig]) -> None:
    """ValidateModelConfigList (the parts the stand-in's config can get wrong)."""
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
