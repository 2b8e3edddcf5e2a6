"""The stand-in model server's command line, as `make serve` builds it."""

from __future__ import annotations

import os
import sys

from tests.support.paths import SERVING_CONFIG_DIR

MODEL_NAME = "mnist"


def standin_command(
    *,
    grpc_port: int,
    rest_port: int,
    base_path=None,
    config_file=None,
    model_name: str = MODEL_NAME,
    poll_seconds: float = 1,
    batching: bool = True,
    monitoring: bool = True,
    extra_flags: tuple[str, ...] = (),
) -> list[str]:
    """`python -m tfserving_standin.cli ...` on 127.0.0.1: one model from base_path, or a
    models.config (config_file, labels allowed at start-up); batching and metrics with the repository's config files."""
    model_flags = (
        # As make serve and the cluster's Deployment: the labelled config loads at start-up only
        # with this flag (TF Serving checks labels before it loads anything).
        [f"--model_config_file={config_file}", "--allow_version_labels_for_unavailable_models"]
        if config_file
        else [f"--model_name={model_name}", f"--model_base_path={os.fspath(base_path)}"]
    )
    command = [
        sys.executable,
        "-m",
        "tfserving_standin.cli",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--host=127.0.0.1",
        *model_flags,
        f"--file_system_poll_wait_seconds={poll_seconds:g}",
    ]
    if batching:
        command += [
            "--enable_batching",
            f"--batching_parameters_file={SERVING_CONFIG_DIR / 'batching_parameters.txt'}",
            "--tensorflow_intra_op_parallelism=1",
            "--tensorflow_inter_op_parallelism=1",
        ]
    if monitoring:
        command.append(f"--monitoring_config_file={SERVING_CONFIG_DIR / 'monitoring.config'}")
    return [*command, *extra_flags]
