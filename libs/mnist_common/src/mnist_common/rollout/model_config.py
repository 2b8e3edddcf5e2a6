"""The rollout rendered as TF Serving's --model_config_file (a ModelServerConfig text proto).

Both versions are loaded (`specific` version policy) and named by the labels `stable` and
`canary`; clients ask for a label (REST /v1/models/mnist/labels/canary:predict, gRPC
ModelSpec.version_label) and TF Serving answers with the version the label names. Without a
canary, `canary` names the stable version: the label never disappears, so a request a client
sent for it a moment before a promote or a rollback is still answered.
"""

from __future__ import annotations

import dataclasses

from mnist_common.rollout.state import RolloutState

STABLE, CANARY = "stable", "canary"


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """What the model server is asked to load, and what each label names."""

    versions: tuple[int, ...]
    labels: tuple[tuple[str, int], ...]

    def __post_init__(self):
        # TF Serving accepts a label on a version the same config unloads (the label check runs
        # while the version still serves), and the label then answers NOT_FOUND: never write one.
        for label, version in self.labels:
            if version not in self.versions:
                raise ValueError(
                    f"label {label} names v{version}, which the config does not load "
                    f"(versions {', '.join(f'v{v}' for v in self.versions)})"
                )

    @property
    def label_map(self) -> dict[str, int]:
        return dict(self.labels)


def labels_for(state: RolloutState) -> tuple[tuple[str, int], ...]:
    return ((STABLE, state.stable), (CANARY, state.canary if state.canary is not None else state.stable))


def server_config(state: RolloutState) -> ServerConfig:
    return ServerConfig(tuple(sorted(state.versions)), labels_for(state))


def render(config: ServerConfig, model_name: str, base_path: str, note: str = "") -> str:
    lines = [
        "# Rendered from the rollout state by `python -m mnist_common.rollout`; edit the state",
        "# (make canary / promote / rollback), not this file.",
    ]
    if note:
        lines.append(f"# {note}")
    lines += [
        "model_config_list {",
        "  config {",
        f'    name: "{model_name}"',
        f'    base_path: "{base_path}"',
        '    model_platform: "tensorflow"',
        "    model_version_policy {",
        "      specific {",
        *[f"        versions: {version}" for version in config.versions],
        "      }",
        "    }",
        *[f'    version_labels {{ key: "{key}" value: {value} }}' for key, value in config.labels],
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_latest(model_name: str, base_path: str) -> str:
    """The `latest` policy: the newest version takes all traffic as soon as it loads, no labels."""
    return (
        "# The newest published version serves everything (VERSION_POLICY=latest); no rollout.\n"
        "model_config_list {\n  config {\n"
        f'    name: "{model_name}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        "    model_version_policy { latest { num_versions: 1 } }\n  }\n}\n"
    )
