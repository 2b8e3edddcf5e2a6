"""Writes TF Serving's Python protos into this package, so a client needs no TensorFlow.

`tensorflow-serving-api`'s modules import TensorFlow's own (`tensorflow.core.framework.tensor_pb2`
and so on), and importing any `tensorflow.*` module runs TensorFlow's `__init__`: the whole
runtime, ~450 MB per process. The generated modules are those same files, taken from the pinned
packages, with only their import lines pointed into `mnist_serving_protos.generated`: descriptors,
file names, proto packages and message names are untouched, so every message is TF Serving's
byte for byte (tests compare them with the originals). Nothing here is kept by hand and nothing
generated is committed: `make setup` and the web UI's image build run this module.

    python -m mnist_serving_protos.generate [--source DIR]

DIR holds the `tensorflow_serving` and `tensorflow` packages' files (site-packages, or a
`pip install --no-deps --target` folder); by default the installed packages are found without
importing them. Exit status 2 names what is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import re
import shutil
import sys
import tempfile

PACKAGE = "mnist_serving_protos.generated"
OUTPUT = pathlib.Path(__file__).resolve().parent / "generated"

# What a TF Serving client uses; everything these import comes along.
ENTRY_MODULES = (
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.model_service_pb2_grpc",
    "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "tensorflow.core.framework.types_pb2",
    "tensorflow.core.protobuf.error_codes_pb2",
)
# Imports that stay as they are: the protobuf and gRPC runtimes.
RUNTIME_PACKAGES = ("google", "grpc")

# `from a.b import c_pb2 as x`, `from a.b.c_pb2 import *`, `import a.b.c_pb2`
_IMPORT = re.compile(r"^(?P<indent>\s*)(?P<kind>from|import)\s+(?P<module>[A-Za-z_][\w.]*)(?P<rest>.*)$")


class GenerationError(Exception):
    """The source packages lack something; the message names it."""


def default_source() -> pathlib.Path:
    """The folder holding the installed `tensorflow_serving`, found without importing it."""
    spec = importlib.util.find_spec("tensorflow_serving")
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError(
            "tensorflow_serving is not installed here: install tensorflow-serving-api (pinned in "
            "requirements/constraints.txt) or pass --source DIR"
        )
    return pathlib.Path(next(iter(spec.submodule_search_locations))).parent


def _module_file(source: pathlib.Path, module: str) -> pathlib.Path:
    return source.joinpath(*module.split(".")).with_suffix(".py")


def _is_generated_name(module: str) -> bool:
    return module.split(".")[0] not in RUNTIME_PACKAGES


def _imports(text: str) -> list[str]:
    """Project modules a generated file imports (`from pkg import x_pb2` names pkg.x_pb2)."""
    found = []
    for line in text.splitlines():
        match = _IMPORT.match(line)
        if not match or not _is_generated_name(match["module"]):
            continue
        module, rest = match["module"], match["rest"].strip()
        if match["kind"] == "from" and not rest.startswith("import *"):
            names = rest.removeprefix("import").split(" as ")[0].strip()
            found.extend(f"{module}.{name.strip()}" for name in names.split(","))
        else:
            found.append(module)
    return found


def _rewrite(text: str) -> str:
    def point_inward(line: str) -> str:
        match = _IMPORT.match(line)
        if not match or not _is_generated_name(match["module"]):
            return line
        return f"{match['indent']}{match['kind']} {PACKAGE}.{match['module']}{match['rest']}"

    return "\n".join(point_inward(line) for line in text.splitlines()) + "\n"


def collect(source: pathlib.Path) -> dict[str, str]:
    """module name -> rewritten text, for the entry modules and everything they import."""
    pending, texts = list(ENTRY_MODULES), {}
    while pending:
        module = pending.pop()
        if module in texts:
            continue
        path = _module_file(source, module)
        if not path.is_file():
            raise GenerationError(f"{path} is missing: {module} is needed by a TF Serving client")
        text = path.read_text(encoding="utf-8")
        texts[module] = _rewrite(text)
        pending.extend(_imports(text))
    return texts


def write(texts: dict[str, str], output: pathlib.Path = OUTPUT) -> None:
    """Replaces `output` whole: a reader sees the old tree or the new one, never half of one."""
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".generated-", dir=output.parent))
    try:
        for module, text in texts.items():
            path = staging.joinpath(*module.split(".")).with_suffix(".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        (staging / "__init__.py").write_text('"""Generated by mnist_serving_protos.generate; not committed."""\n')
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if output.exists():
            os.replace(output, old)
        os.replace(staging, output)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_serving_protos.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=pathlib.Path, help="folder holding tensorflow_serving/ and tensorflow/")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        source = args.source or default_source()
        if not (source / "tensorflow_serving").is_dir():
            raise GenerationError(f"--source {source}: no tensorflow_serving/ package in it")
        texts = collect(source)
        write(texts, args.output)
    except GenerationError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    print(f"{parser.prog}: {len(texts)} modules from {source} into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
