"""Reading the configuration files TF Serving reads, in its own protobuf text formats.

models.config uses tensorflow_serving.config.model_server_config_pb2 (shipped with
tensorflow-serving-api). The batching parameters (session_bundle_config.proto) and the monitoring
config (monitoring_config.proto) are not in that package, so their messages are declared here
from the same field names, numbers and types, and parsed with google.protobuf.text_format: a file
the real server accepts is accepted here, and a typo is an error naming the file and the field.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,  # noqa: F401  (registers google/protobuf/wrappers.proto)
)
from tensorflow_serving.config import model_server_config_pb2

from mnist_common import storage


class ConfigError(ValueError):
    """A configuration file or flag that cannot be used; the message names it."""


_FieldType = descriptor_pb2.FieldDescriptorProto


def _build_messages():
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    except KeyError:
        file_proto = descriptor_pb2.FileDescriptorProto(
            name="tfserving_standin/serving_configs.proto",
            package="tensorflow.serving",
            syntax="proto3",
            dependency=["google/protobuf/wrappers.proto"],
        )

        def add_message(name, fields):
            message = file_proto.message_type.add(name=name)
            for number, (field_name, field_type, type_name, repeated) in enumerate(fields, 1):
                field = message.field.add(
                    name=field_name,
                    number=number,
                    type=field_type,
                    label=_FieldType.LABEL_REPEATED if repeated else _FieldType.LABEL_OPTIONAL,
                )
                if type_name:
                    field.type_name = type_name

        int64_value = ".google.protobuf.Int64Value"
        message = _FieldType.TYPE_MESSAGE
        # Field order is the field number, as in session_bundle_config.proto.
        add_message(
            "BatchingParameters",
            [
                ("max_batch_size", message, int64_value, False),
                ("batch_timeout_micros", message, int64_value, False),
                ("max_enqueued_batches", message, int64_value, False),
                ("num_batch_threads", message, int64_value, False),
                ("thread_pool_name", message, ".google.protobuf.StringValue", False),
                ("allowed_batch_sizes", _FieldType.TYPE_INT64, None, True),
                ("pad_variable_length_inputs", _FieldType.TYPE_BOOL, None, False),
                ("enable_large_batch_splitting", message, ".google.protobuf.BoolValue", False),
                ("max_execution_batch_size", message, int64_value, False),
            ],
        )
        add_message(
            "PrometheusConfig",
            [("enable", _FieldType.TYPE_BOOL, None, False), ("path", _FieldType.TYPE_STRING, None, False)],
        )
        add_message(
            "MonitoringConfig",
            [("prometheus_config", message, ".tensorflow.serving.PrometheusConfig", False)],
        )
        pool.Add(file_proto)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")),
    )


BatchingParametersProto, MonitoringConfigProto = _build_messages()


def _parse_text(path: str, message):
    try:
        text = storage.read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise ConfigError(f"{path}: not a valid {message.DESCRIPTOR.name} in text format: {error}") from None
    return message


# ---- models.config -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which numbered versions of a model should be loaded (model_version_policy)."""

    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1  # for latest
    versions: tuple[int, ...] = ()  # for specific

    def select(self, available: list[int]) -> set[int]:
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return set(available) & set(self.versions)
        return set(sorted(available)[-self.num_versions :]) if available else set()


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: dict[str, int] = dataclasses.field(default_factory=dict)


def _policy_from_proto(proto, source: str) -> VersionPolicy:
    which = proto.WhichOneof("policy_choice")
    if which is None or which == "latest":
        num = proto.latest.num_versions if which else 1
        if num < 1 and which:
            raise ConfigError(f"{source}: model_version_policy.latest.num_versions must be >= 1")
        return VersionPolicy("latest", num_versions=max(num, 1))
    if which == "all":
        return VersionPolicy("all")
    versions = tuple(proto.specific.versions)
    if not versions:
        raise ConfigError(f"{source}: model_version_policy.specific needs at least one version")
    return VersionPolicy("specific", versions=versions)


def load_model_config_file(path: str) -> list[ModelConfig]:
    """Parse a ModelServerConfig (model_config_list) file into model configs."""
    proto = _parse_text(path, model_server_config_pb2.ModelServerConfig())
    if proto.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: only model_config_list is supported (custom_model_config is not)")
    models = []
    for entry in proto.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ConfigError(f"{path}: every config needs a name and a base_path")
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(f'{path}: model {entry.name}: only model_platform "tensorflow" is supported')
        models.append(
            ModelConfig(
                name=entry.name,
                base_path=entry.base_path,
                policy=_policy_from_proto(entry.model_version_policy, f"{path}: model {entry.name}"),
                labels=dict(entry.version_labels),
            )
        )
    if len({m.name for m in models}) != len(models):
        raise ConfigError(f"{path}: model names must be unique")
    if not models:
        raise ConfigError(f"{path}: model_config_list has no config")
    return models


# ---- batching parameters -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's defaults for BatchingParameters when a field is left out."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 100
    num_batch_threads: int = 4


def load_batching_parameters(path: str | None) -> BatchingParameters:
    if not path:
        return BatchingParameters()
    proto = _parse_text(path, BatchingParametersProto())
    defaults = BatchingParameters()
    values = {}
    for field in dataclasses.fields(BatchingParameters):
        value = getattr(proto, field.name).value if proto.HasField(field.name) else getattr(defaults, field.name)
        values[field.name] = value
    params = BatchingParameters(**values)
    for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
        if getattr(params, name) < 1:
            raise ConfigError(f"{path}: {name} must be >= 1")
    if params.batch_timeout_micros < 0:
        raise ConfigError(f"{path}: batch_timeout_micros must be >= 0")
    return params


# ---- monitoring ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MonitoringConfig:
    prometheus_enabled: bool = False
    prometheus_path: str = "/monitoring/prometheus/metrics"


def load_monitoring_config(path: str | None) -> MonitoringConfig:
    if not path:
        return MonitoringConfig()
    proto = _parse_text(path, MonitoringConfigProto())
    prometheus = proto.prometheus_config
    metrics_path = prometheus.path or MonitoringConfig.prometheus_path
    if not metrics_path.startswith("/"):
        raise ConfigError(f"{path}: prometheus_config.path must start with /")
    return MonitoringConfig(prometheus_enabled=prometheus.enable, prometheus_path=metrics_path)


def resolve_local(path: str) -> str:
    """Local base paths are made absolute (TF Serving requires them absolute); URIs stay."""
    return path if storage.is_remote(path) else str(Path(path).resolve())
