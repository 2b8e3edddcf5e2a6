"""`make pipeline-local`: the compiled pipeline, run here by kfp.local's DockerRunner on the images
`make images` built, publishing into the local stack's model base path and rollout files.

The containers see the host's folders through bind mounts at fixed paths (MOUNTS), and run as the
calling user, so what they write belongs to whoever ran make. Before anything runs, every image the
IR names must be built here (nothing is pulled: the images are this checkout's). A failed step ends
the run with one line naming the step, its exit code and the reason its command gave.

Three places where kfp.local 2.17 differs from the KFP backend are brought in line here:
- its container runner (kfp/local/docker_task_handler.py, run_docker_container) starts containers
  with auto_remove and reports success when the container is gone before its exit code is read; a
  gate refusal must never read as success, so each container is run here, its exit code waited
  for, then removed;
- it records a step's output artifacts only when the step writes an ExecutorOutput file naming
  them (kfp/local/executor_output_utils.py, get_outputs_from_executor_output), which container
  components other than evaluate do not; the backend's launcher registers every output artifact
  the executor input declares, merged with what the file says (backend/src/v2/component/
  launcher_v2.go, uploadOutputArtifacts), and so does this module;
- it refuses a dsl.OneOf over artifacts (kfp/local/orchestrator/orchestrator_utils.py,
  get_dag_output_artifacts: "Expected 1 artifact in ArtifactSelectorSpec"), which the pipeline
  uses to hand export the model of whichever train branch ran; the SDK compiles such a OneOf to
  one artifact selector per branch, and this module resolves it to the branch that produced the
  artifact, as kfp.local itself does for a OneOf over parameters (get_dag_output_parameters,
  value_from_oneof).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import sys

import yaml

# In-container paths of the host folders a local run mounts.
MODEL_BASE_MOUNT = "/mnt/models/mnist"
ROLLOUT_MOUNT = "/mnt/rollout"
CACHE_MOUNT = "/mnt/mnist-cache"
# A step's exit code and what it means (the commands' documented codes).
EXIT_MEANINGS = {2: "bad input", 3: "refused by the validation gate", 143: "terminated"}
# The lines that say why: the command's own (mnist-export: REFUSED ..., failed check ...,
# mnist-train: error: ...) or a Python exception's last line; never TensorFlow's C++ log lines.
REASON = re.compile(r"^(mnist-[\w-]+: |failed check |\w+(Error|Exception): )")
NOISE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:|WARNING: All log messages before absl)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class LocalRunError(Exception):
    """The run cannot start or a step failed; the message names the step and the reason."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass
class ContainerRun:
    image: str
    exit_code: int | None = None
    lines: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class HostPaths:
    pipeline_root: str
    model_base_path: str
    rollout_file: str
    model_config_file: str
    data_cache_dir: str


def ir_steps(package: dict) -> dict[str, dict]:
    """{task name: task} of every container step, at the top or inside a condition's DAG (a
    dsl.If/Else branch is a task whose component is a DAG of its own)."""
    components = package["components"]
    dags = [package["root"]["dag"]] + [component["dag"] for component in components.values() if "dag" in component]
    return {
        name: task
        for dag in dags
        for name, task in dag["tasks"].items()
        if "executorLabel" in components[task["componentRef"]["name"]]
    }


def ir_images(package: dict) -> dict[str, str]:
    """{task name: image} of a compiled pipeline."""
    executors = package["deploymentSpec"]["executors"]
    components = package["components"]
    return {
        name: executors[components[task["componentRef"]["name"]]["executorLabel"]]["container"]["image"]
        for name, task in ir_steps(package).items()
    }


def ir_parameter_types(package: dict) -> dict[str, str]:
    return {
        name: spec["parameterType"]
        for name, spec in package["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }


def typed_arguments(given: dict[str, str], types: dict[str, str]) -> dict[str, object]:
    """Text values as the IR's parameter types; a bad one is refused naming the parameter."""
    parse = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str}
    arguments = {}
    for name, text in given.items():
        if name not in types:
            raise LocalRunError(f"parameter {name!r} is not one of the pipeline's: {', '.join(sorted(types))}", 2)
        try:
            arguments[name] = parse[types[name]](text)
        except (KeyError, ValueError):
            raise LocalRunError(f"parameter {name}={text!r} is not a {types[name].lower()}", 2) from None
    return arguments


def missing_images(images: dict[str, str], client) -> dict[str, str]:
    import docker

    missing = {}
    for task, image in images.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing[task] = image
    return missing


def reason_of(run: ContainerRun | None) -> str:
    if run is None:
        return "its container did not start"
    lines = [ANSI.sub("", line).strip() for line in run.lines if line.strip()]
    lines = [line for line in lines if not NOISE.match(line)]
    chosen = [line for line in lines if REASON.search(line)] or lines[-3:]
    meaning = EXIT_MEANINGS.get(run.exit_code or 0, "")
    prefix = f"exit {run.exit_code}" + (f", {meaning}" if meaning else "")
    return prefix + (": " + " | ".join(chosen[-4:]) if chosen else "")


class ContainerRunner:
    """kfp.local's run_docker_container, waiting for the exit code before removing the container."""

    def __init__(self):
        self.runs: list[ContainerRun] = []

    def __call__(self, client, image: str, command: list[str], volumes: dict, **run_args) -> int:
        run = ContainerRun(image)
        self.runs.append(run)
        # Named and labelled, so a container left by a killed run is easy to find on a shared engine.
        name = f"mnist-pipeline-local-{os.getpid()}-{len(self.runs)}"
        container = client.containers.run(
            image=image,
            command=command,
            detach=True,
            stdout=True,
            stderr=True,
            volumes=volumes,
            name=name,
            labels={"app.kubernetes.io/part-of": "mnist", "mnist.pipeline-local": "true"},
            **run_args,
        )
        try:
            for chunk in container.logs(stream=True, follow=True):
                text = chunk.decode(errors="replace")
                print(text, end="")
                run.lines.extend(text.splitlines())
            run.exit_code = int(container.wait()["StatusCode"])
        finally:
            container.remove(force=True)
        return run.exit_code


def oneof_dag_output_artifacts(cls, dag_outputs_spec, io_store) -> dict:
    """A DAG's output artifacts, a selector list being a dsl.OneOf: the one branch that ran."""
    outputs = {}
    for key, spec in dag_outputs_spec.artifacts.items():
        found = []
        for selector in spec.artifact_selectors:
            try:
                found.append(io_store.get_task_output(selector.producer_subtask, selector.output_artifact_key))
            except (KeyError, ValueError):  # the branch did not run
                continue
        if len(found) != 1:
            raise ValueError(f"dsl.OneOf output {key!r}: {len(found)} branches produced it, expected exactly one")
        outputs[key] = found[0]
    return outputs


def outputs_with_declared_artifacts(executor_input, component_spec) -> dict:
    """kfp.local's get_outputs_for_task, with every declared output artifact, as the backend has."""
    from kfp.local import executor_output_utils

    written = executor_output_utils.load_executor_output(executor_input.outputs.output_file)
    for name, declared in executor_input.outputs.artifacts.items():
        if name not in written.artifacts:
            written.artifacts[name].CopyFrom(declared)
    return executor_output_utils.get_outputs_from_executor_output(written, executor_input, component_spec)


def host_paths(args) -> HostPaths:
    paths = HostPaths(
        pipeline_root=os.path.abspath(args.pipeline_root),
        model_base_path=os.path.abspath(args.model_base_path),
        rollout_file=os.path.abspath(args.rollout_file),
        model_config_file=os.path.abspath(args.model_config_file),
        data_cache_dir=os.path.abspath(args.data_cache_dir),
    )
    if os.path.dirname(paths.rollout_file) != os.path.dirname(paths.model_config_file):
        raise LocalRunError(
            f"the rollout file {args.rollout_file} and the model config {args.model_config_file} must share a folder"
            " (both are written whole by a rename in it)",
            2,
        )
    return paths


def mounts(paths: HostPaths) -> list:
    from docker.types import Mount

    return [
        Mount(target=MODEL_BASE_MOUNT, source=paths.model_base_path, type="bind"),
        Mount(target=ROLLOUT_MOUNT, source=os.path.dirname(paths.rollout_file), type="bind"),
        Mount(target=CACHE_MOUNT, source=paths.data_cache_dir, type="bind", read_only=True),
    ]


def local_arguments(paths: HostPaths) -> dict[str, str]:
    """The parameters that point the steps at the mounted host folders."""
    return {
        "model_base_path": MODEL_BASE_MOUNT,
        "data_cache_dir": CACHE_MOUNT,
        "rollout_state_file": f"{ROLLOUT_MOUNT}/{os.path.basename(paths.rollout_file)}",
        "model_config_file": f"{ROLLOUT_MOUNT}/{os.path.basename(paths.model_config_file)}",
        "served_base_path": paths.model_base_path,
        "rollout_namespace": "",
    }


def newest_output(pipeline_root: str, before: set[str], task: str, name: str) -> str | None:
    runs = sorted(set(glob.glob(os.path.join(pipeline_root, "*"))) - before, key=os.path.getmtime)
    for run in reversed(runs):
        path = os.path.join(run, task, name)
        if os.path.exists(path):
            return path
    return None


def run(args) -> int:
    with open(args.package) as handle:
        # The pipeline spec; a second document, the Kubernetes platform spec, is the cluster's.
        package = next(yaml.safe_load_all(handle))
    paths = host_paths(args)
    given = dict(local_arguments(paths)) | dict(pair.split("=", 1) for pair in args.set)
    arguments = typed_arguments(given, ir_parameter_types(package))

    import docker
    from kfp import components, local
    from kfp.local import docker_task_handler, executor_output_utils
    from kfp.local.orchestrator import orchestrator_utils

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise LocalRunError(f"no Docker engine answers ({error}): start it, or check DOCKER_HOST", 2) from None
    missing = missing_images(ir_images(package), client)
    if missing:
        steps = "; ".join(f"step {task}: image {image}" for task, image in sorted(missing.items()))
        raise LocalRunError(f"not built here: {steps}. Run 'make images', then 'make pipeline' again", 2)

    for folder in (paths.pipeline_root, paths.model_base_path, os.path.dirname(paths.rollout_file)):
        os.makedirs(folder, exist_ok=True)
    if not os.path.isdir(paths.data_cache_dir):
        raise LocalRunError(f"{paths.data_cache_dir}: no data cache (the npm tarball): run 'make data' first", 2)

    runner = ContainerRunner()
    docker_task_handler.run_docker_container = runner
    executor_output_utils.get_outputs_for_task = outputs_with_declared_artifacts
    orchestrator_utils.OrchestratorUtils.get_dag_output_artifacts = classmethod(oneof_dag_output_artifacts)
    local.init(
        runner=local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}", mounts=mounts(paths)),
        pipeline_root=paths.pipeline_root,
        raise_on_error=True,
    )
    before = set(glob.glob(os.path.join(paths.pipeline_root, "*")))
    pipeline = components.load_component_from_file(args.package)
    try:
        pipeline(**arguments)
    except RuntimeError as error:
        text = ANSI.sub("", str(error))
        found = re.search(r"(?:Inner task failed: |Task )'?([\w-]+)'?", text)
        last = runner.runs[-1] if runner.runs else None
        step = found.group(1) if found else "?"
        raise LocalRunError(f"step {step} failed ({reason_of(last)}); nothing after it ran", 1) from None

    metrics = newest_output(paths.pipeline_root, before, "evaluate", "metrics")
    if metrics:
        with open(metrics) as handle:
            figures = json.load(handle)
        print(
            f"pipeline-local: version {figures['version']} published in {paths.model_base_path}: test accuracy "
            f"{figures['test_accuracy']:.4f} on {figures['test_digits']} held-out digits; evaluation in "
            f"{os.path.dirname(metrics)}"
        )
    with open(paths.rollout_file) as handle:
        state = json.load(handle)
    roles = f"stable v{state['stable']}" + (
        f", canary v{state['canary']} at {state['canary_percent']:g} %" if state.get("canary") else ""
    )
    print(f"pipeline-local: rollout {paths.rollout_file}: {roles}; 'make serve' serves it")
    return 0


def main(args) -> int:
    try:
        return run(args)
    except LocalRunError as error:
        print(f"pipeline-local: error: {error}", file=sys.stderr)
        return error.exit_code
