"""tfserving-standin: command line flags named as tensorflow_model_server's where they overlap.

    tfserving-standin --port=8500 --rest_api_port=8501 --model_name=mnist \
        --model_base_path=artifacts/models/mnist --enable_batching \
        --batching_parameters_file=config/batching_parameters.txt \
        --monitoring_config_file=config/monitoring.config

Flags take `--flag=value` or `--flag value`; booleans also `--flag` alone. A flag or file that
cannot be used is reported with its name and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

from mnist_common import logs
from tfserving_standin.core import event_loop
from tfserving_standin.core.config import (
    ConfigError,
    ModelConfig,
    load_batching_parameters,
    load_model_config_file,
    load_monitoring_config,
    resolve_local,
)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _DefaultsShown(argparse.HelpFormatter):
    """Names the default of every flag whose help does not already say it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS) and action.option_strings and "default" not in text:
            text += " (default %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfserving-standin",
        description="A local stand-in for tensorflow_model_server: TF Serving's REST and gRPC APIs "
        "over SavedModel versions in a base path.",
        formatter_class=_DefaultsShown,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('tfserving-standin')}")
    tf_flags = parser.add_argument_group("flags of tensorflow_model_server")
    tf_flags.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    tf_flags.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default 8501; 0 turns REST off)")
    tf_flags.add_argument(
        "--model_name",
        default="mnist",
        help="model name when --model_base_path is used (default mnist, the name the web UI asks for)",
    )
    tf_flags.add_argument("--model_base_path", help="folder (or gs:// URI) holding numbered SavedModel versions")
    tf_flags.add_argument("--model_config_file", help="ModelServerConfig text proto (model_config_list)")
    tf_flags.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between polls of the base paths for new versions (default 1; 0 polls once)",
    )
    tf_flags.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="seconds between re-reads of --model_config_file while serving (default 0: read once)",
    )
    tf_flags.add_argument(
        "--allow_version_labels_for_unavailable_models",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="a new version label may name a version that is not loaded yet (an existing one still moves "
        "only to an AVAILABLE version)",
    )
    tf_flags.add_argument(
        "--enable_batching",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="merge concurrent requests into one signature call (default false)",
    )
    tf_flags.add_argument("--batching_parameters_file", help="BatchingParameters text proto")
    tf_flags.add_argument("--monitoring_config_file", help="MonitoringConfig text proto (Prometheus endpoint)")
    tf_flags.add_argument(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="threads per TensorFlow op (0: TensorFlow's choice)",
    )
    tf_flags.add_argument(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="TensorFlow ops run in parallel (0: TensorFlow's choice)",
    )
    own = parser.add_argument_group("stand-in only")
    own.add_argument("--host", default="0.0.0.0", help="address both ports bind to (default 0.0.0.0, as TF Serving)")
    own.add_argument(
        "--max_request_bytes",
        type=int,
        default=4 << 20,
        help="largest REST body / gRPC message accepted (default 4 MiB, gRPC's default)",
    )
    own.add_argument(
        "--client_timeout_seconds",
        type=float,
        default=5.0,
        help="seconds a REST client has to send a whole request, headers and body, and the longest "
        "an idle kept-alive connection stays open (default 5)",
    )
    own.add_argument(
        "--log_level",
        default=os.environ.get("LOG_LEVEL", "INFO"),
        help="logging level (env LOG_LEVEL; default %(default)s)",
    )
    return parser


def options_from_args(args: argparse.Namespace):
    from tfserving_standin.server import ServerOptions

    if bool(args.model_base_path) == bool(args.model_config_file):
        raise ConfigError("give exactly one of --model_base_path or --model_config_file")
    if args.model_config_file:
        models = load_model_config_file(args.model_config_file)
        models = [ModelConfig(m.name, resolve_local(m.base_path), m.policy, m.labels) for m in models]
    else:
        models = [ModelConfig(args.model_name, resolve_local(args.model_base_path))]
    if args.model_config_file_poll_wait_seconds < 0:
        raise ConfigError("--model_config_file_poll_wait_seconds must be >= 0")
    if args.model_config_file_poll_wait_seconds and not args.model_config_file:
        raise ConfigError("--model_config_file_poll_wait_seconds needs --model_config_file")
    if args.batching_parameters_file and not args.enable_batching:
        raise ConfigError("--batching_parameters_file needs --enable_batching")
    for flag in ("port", "rest_api_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            raise ConfigError(f"--{flag} must be a port number")
    if args.max_request_bytes < 1024:
        raise ConfigError("--max_request_bytes must be at least 1024")
    if not 0 < args.client_timeout_seconds <= 3600:
        raise ConfigError("--client_timeout_seconds must be more than 0 and at most 3600")
    return ServerOptions(
        models=models,
        grpc_port=args.port,
        rest_port=args.rest_api_port,
        host=args.host,
        poll_seconds=args.file_system_poll_wait_seconds,
        batching=load_batching_parameters(args.batching_parameters_file) if args.enable_batching else None,
        monitoring=load_monitoring_config(args.monitoring_config_file),
        max_request_bytes=args.max_request_bytes,
        client_timeout_seconds=args.client_timeout_seconds,
        intra_op_threads=args.tensorflow_intra_op_parallelism,
        inter_op_threads=args.tensorflow_inter_op_parallelism,
        config_file=args.model_config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        allow_unavailable_labels=args.allow_version_labels_for_unavailable_models,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        logs.configure("tfserving-standin", args.log_level)
        options = options_from_args(args)
    except (ConfigError, logs.LogFormatError) as error:
        print(f"tfserving-standin: error: {error}", file=sys.stderr)
        return 2
    from tfserving_standin.server import StartupError

    try:
        event_loop.run(_serve(options))
    except StartupError as error:
        # main.cc: `std::cout << "Failed to start server. Error: " << status`, then `return -1`.
        print(f"Failed to start server. Error: {error}", file=sys.stderr)
        event_loop.exit_now(255)
    except OSError as error:
        print(f"tfserving-standin: error: {error}", file=sys.stderr)
        return 1
    event_loop.exit_now(0)


async def _serve(options):
    from tfserving_standin.server import serve

    await serve(options)


if __name__ == "__main__":
    sys.exit(main())
