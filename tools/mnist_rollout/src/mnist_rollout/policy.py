"""The promote guard's margins, from a YAML file (loadtest/rollout.yaml):

promote:
  max_error_rate_increase: 0.01   # canary error rate at most 1 point above stable's
  max_p95_increase_ms: 50         # canary p95 at most 50 ms above stable's
  min_canary_requests: 20         # fewer canary answers than this: too early to judge
"""

from __future__ import annotations

import dataclasses

from mnist_rollout.decisions import PromotePolicy


class PolicyError(ValueError):
    """The policy file cannot be used; the message names it and the field."""


def load(path: str | None) -> PromotePolicy:
    if not path:
        return PromotePolicy()
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from None
    section = data.get("promote", {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise PolicyError(f"{path}: expected a mapping 'promote:'")
    known = {field.name: field.type for field in dataclasses.fields(PromotePolicy)}
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise PolicyError(f"{path}: unknown promote field(s) {', '.join(unknown)}")
    values = {}
    for name, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PolicyError(f"{path}: promote.{name} must be a number >= 0, not {value!r}")
        values[name] = int(value) if name == "min_canary_requests" else float(value)
    return PromotePolicy(**values)
