"""The config files TF Serving reads, as the stand-in parses them, and the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import SERVING_CONFIG_DIR as CONFIG_DIR
from tfserving_standin import cli
from tfserving_standin.core.config import (
    BatchingParameters,
    ConfigError,
    VersionPolicy,
    load_batching_parameters,
    load_model_config_file,
    load_monitoring_config,
)


def test_shipped_models_config():
    [model] = load_model_config_file(str(CONFIG_DIR / "models.config"))
    assert (model.name, model.base_path) == ("mnist", "/models/mnist")
    assert model.policy == VersionPolicy("latest", num_versions=1)


def test_shipped_batching_parameters_and_monitoring_config():
    params = load_batching_parameters(str(CONFIG_DIR / "batching_parameters.txt"))
    assert params.max_batch_size >= 16 and params.batch_timeout_micros > 0 and params.num_batch_threads >= 1
    monitoring = load_monitoring_config(str(CONFIG_DIR / "monitoring.config"))
    assert monitoring.prometheus_enabled and monitoring.prometheus_path == "/monitoring/prometheus/metrics"


def test_version_policies_and_labels(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "a" base_path: "/m/a" model_version_policy { all {} } }\n'
        '  config { name: "b" base_path: "/m/b" model_version_policy { specific { versions: 2 versions: 5 } }\n'
        '    version_labels { key: "stable" value: 2 } version_labels { key: "canary" value: 5 } }\n'
        '  config { name: "c" base_path: "/m/c" model_version_policy { latest { num_versions: 2 } } } }\n'
    )
    a, b, c = load_model_config_file(str(config))
    assert a.policy.select([1, 2, 3]) == {1, 2, 3}
    assert b.policy.select([1, 2, 3, 5]) == {2, 5} and b.labels == {"stable": 2, "canary": 5}
    assert c.policy.select([1, 7, 3]) == {3, 7}
    assert VersionPolicy().select([]) == set()


def test_unset_batching_fields_take_tf_servings_defaults(tmp_path):
    path = tmp_path / "batching.txt"
    path.write_text("max_batch_size { value: 32 }\n")
    assert load_batching_parameters(str(path)) == BatchingParameters(max_batch_size=32)


@pytest.mark.parametrize(
    ("file_name", "text", "loader", "fragment"),
    [
        ("b.txt", "max_batch_size: 3\n", load_batching_parameters, "BatchingParameters"),
        ("b.txt", "max_batch_sizes { value: 3 }\n", load_batching_parameters, "max_batch_sizes"),
        ("b.txt", "num_batch_threads { value: 0 }\n", load_batching_parameters, "num_batch_threads"),
        ("m.config", 'prometheus_config { enable: true path: "metrics" }\n', load_monitoring_config, "start with /"),
        ("models.config", 'model_config_list { config { name: "x" } }\n', load_model_config_file, "base_path"),
    ],
)
def test_bad_config_files_name_the_file(tmp_path, file_name, text, loader, fragment):
    path = tmp_path / file_name
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        loader(str(path))
    assert str(path) in str(caught.value) and fragment in str(caught.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="no such file"):
        load_monitoring_config("/nonexistent/monitoring.config")


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ([], "exactly one of --model_base_path or --model_config_file"),
        (["--model_base_path=x", "--model_config_file=y"], "exactly one of"),
        (["--model_base_path=x", "--batching_parameters_file=b.txt"], "--enable_batching"),
        (["--model_base_path=x", "--port=70000"], "--port"),
        (["--model_base_path=x", "--client_timeout_seconds=0"], "--client_timeout_seconds"),
    ],
)
def test_cli_rejects_bad_flags_with_exit_code_2(flags, fragment, capsys):
    assert cli.main(flags) == 2
    assert fragment in capsys.readouterr().err


def test_cli_accepts_tf_serving_flag_spellings():
    args = cli.build_parser().parse_args(
        [
            "--port=9000",
            "--rest_api_port",
            "9001",
            "--model_name=mnist",
            "--model_base_path=/m",
            "--enable_batching=false",
            "--file_system_poll_wait_seconds=5",
        ]
    )
    options = cli.options_from_args(args)
    assert (options.grpc_port, options.rest_port, options.poll_seconds, options.batching) == (9000, 9001, 5, None)
    assert cli.build_parser().parse_args(["--enable_batching"]).enable_batching is True


def test_cli_help_runs():
    result = subprocess.run(
        [sys.executable, "-m", "tfserving_standin.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--model_base_path" in result.stdout
