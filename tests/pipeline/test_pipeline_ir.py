"""The compiled pipeline (KFP's IR YAML) holds what its steps declare: each step's image and
command (mnist_kfp.steps), arguments the real command line accepts, parameters whose defaults are
training.env's and make's, caching only where declared, and the order data -> train -> export ->
evaluate -> publish. The IR's shape is KFP's PipelineSpec (kubeflow/pipelines
api/v2alpha1/pipeline_spec.proto: root.dag.tasks, components, deploymentSpec.executors)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from mnist_kfp import parameters
from mnist_kfp.local_run import ir_steps
from mnist_kfp.steps import BRANCHES, ORDER, STEPS

from tests.pipeline.conftest import IMAGES, MAKE_DEFAULTS, compile_args, kfp_module
from tests.support.make import make
from tests.support.paths import KUSTOMIZE, VENV_BIN

IMAGE_FIELD = {"trainer": "mnist-trainer", "exporter": "mnist-model-exporter"}
PLACEHOLDER = re.compile(r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([\w-]+)'\](?:\.(path|output_file))?\}\}")
# Inside a condition's DAG, KFP names a pipeline parameter "pipelinechannel--NAME".
CHANNEL = "pipelinechannel--"


def tasks(ir: dict) -> dict:
    """Every container step, the two train branches' included."""
    return ir_steps(ir)


def all_tasks(ir: dict) -> dict:
    dags = [ir["root"]["dag"]] + [c["dag"] for c in ir["components"].values() if "dag" in c]
    return {name: task for dag in dags for name, task in dag["tasks"].items()}


def steps_in(ir: dict, task: str) -> set[str]:
    """The container steps a task stands for: itself, or every step inside its DAG (a branch)."""
    component = ir["components"][all_tasks(ir)[task]["componentRef"]["name"]]
    if "dag" not in component:
        return {task}
    return set().union(*(steps_in(ir, inner) for inner in component["dag"]["tasks"]))


def waits_for(ir: dict, task: str) -> set[str]:
    """The steps a step waits for: its own dependencies and those of the branches it is inside."""
    found = set().union(set(), *(steps_in(ir, d) for d in all_tasks(ir)[task].get("dependentTasks", [])))
    for name, component in ir["components"].items():
        if "dag" in component and task in component["dag"]["tasks"]:
            for outer, spec in all_tasks(ir).items():
                if spec["componentRef"]["name"] == name:
                    found |= waits_for(ir, outer)
    return found


def container(ir: dict, task: str) -> dict:
    component = ir["components"][tasks(ir)[task]["componentRef"]["name"]]
    return ir["deploymentSpec"]["executors"][component["executorLabel"]]["container"]


def pipeline_defaults(ir: dict) -> dict:
    specs = ir["root"]["inputDefinitions"]["parameters"]
    return {name: spec.get("defaultValue") for name, spec in specs.items()}


def launcher_text(value) -> str:
    """A parameter value as KFP's launcher writes it into a command line: numbers by Go's
    strconv.FormatFloat(v, 'f', -1, 64), so 14.0 is "14" (backend/src/v2/component/launcher_v2.go,
    getPlaceholders)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def resolved_args(ir: dict, task: str) -> list[str]:
    """The step's arguments as the launcher would hand them over, with the pipeline's defaults."""
    defaults = pipeline_defaults(ir)
    wiring = tasks(ir)[task]["inputs"].get("parameters", {})
    values = {}
    for name, source in wiring.items():
        if "componentInputParameter" in source:
            values[name] = defaults.get(source["componentInputParameter"].removeprefix(CHANNEL))
        else:  # another step's output: export's result
            values[name] = json.dumps({"version": 1, "published": True})

    def one(text: str) -> str:
        def substitute(match):
            direction, kind, name, _ = match.groups()
            if kind == "parameters" and direction == "inputs":
                return launcher_text(values[name])
            return f"/kfp/{direction}/{name}"

        return PLACEHOLDER.sub(substitute, text.replace("{{$}}", "{}"))

    args = []
    for arg in container(ir, task)["args"]:
        if arg.startswith('{"IfPresent"'):
            present = json.loads(arg)["IfPresent"]
            if values.get(present["InputName"]) is not None:
                args += [one(part) for part in present["Then"]]
            continue
        args.append(one(arg))
    return args


def test_the_pipeline_has_the_declared_steps_in_order(compiled):
    assert set(tasks(compiled)) == set(STEPS)
    stages = [step for step in ORDER if step not in BRANCHES.values()]
    for before, after in zip(stages, stages[1:], strict=False):
        assert before in waits_for(compiled, after), f"{after} does not wait for {before}"
        if before in BRANCHES:  # the stage after a branch waits for either branch
            assert BRANCHES[before] in waits_for(compiled, after), f"{after} does not wait for {BRANCHES[before]}"
    for single, distributed in BRANCHES.items():
        assert waits_for(compiled, single) == waits_for(compiled, distributed)


@pytest.mark.parametrize("task", ORDER)
def test_each_step_runs_its_declared_image_and_command(compiled, task):
    spec = container(compiled, task)
    assert spec["image"] == IMAGES[IMAGE_FIELD[STEPS[task].image]]
    assert spec["command"] == [STEPS[task].command]
    assert tasks(compiled)[task]["taskInfo"]["name"] == task


@pytest.mark.parametrize("task", ORDER)
def test_caching_is_on_only_where_declared(compiled, task):
    assert tasks(compiled)[task]["cachingOptions"].get("enableCache", False) is STEPS[task].cached


def test_the_defaults_are_training_env_and_makes(compiled):
    defaults = pipeline_defaults(compiled)
    env = parameters.training_env()
    assert defaults["epochs"] == int(env["EPOCHS"]) and defaults["batch_size"] == int(env["BATCH_SIZE"])
    assert defaults["learning_rate"] == float(env["LEARNING_RATE"]) and defaults["seed"] == int(env["SEED"])
    assert defaults["min_accuracy"] == float(MAKE_DEFAULTS["MIN_ACCURACY"])
    assert defaults["max_regression"] == float(MAKE_DEFAULTS["MAX_REGRESSION"])
    assert defaults["keep_versions"] == int(MAKE_DEFAULTS["KEEP_VERSIONS"])
    assert defaults["canary_percent"] == float(MAKE_DEFAULTS["CANARY_PERCENT"])
    assert defaults["data_source"] == MAKE_DEFAULTS["DATA_SOURCE"]
    assert (
        defaults["rollout_namespace"]
        == yaml.safe_load((KUSTOMIZE / "base" / "namespace.yaml").read_text())["metadata"]["name"]
    )
    specs = compiled["root"]["inputDefinitions"]["parameters"]
    assert "defaultValue" not in specs["model_base_path"], "where to publish has no default: a run must say"


def test_a_trainer_setting_the_env_file_leaves_out_takes_the_trainers_default(tmp_path):
    from mnist_trainer.config import OPTIONS

    env = tmp_path / "training.env"
    env.write_text("# only two\nEPOCHS=3\nSEED=5\n")
    defaults = parameters.training_defaults(env)
    trainer = {option.env: option.default for option in OPTIONS}
    assert defaults == {
        "epochs": 3,
        "seed": 5,
        "batch_size": trainer["BATCH_SIZE"],
        "learning_rate": trainer["LEARNING_RATE"],
    }
    env.write_text("EPOCHS=zero\n")
    with pytest.raises(parameters.ParameterError, match="EPOCHS='zero'"):
        parameters.training_defaults(env)


def test_every_step_input_comes_from_the_pipeline_parameter_of_its_name_or_an_earlier_step(compiled):
    for task, spec in tasks(compiled).items():
        for name, source in spec["inputs"].get("parameters", {}).items():
            if "componentInputParameter" in source:
                parameter = source["componentInputParameter"].removeprefix(CHANNEL)
                assert parameter == TFJOB_PARAMETERS.get(name, name), f"{task}.{name}"
            else:
                assert source["taskOutputParameter"] == {"outputParameterKey": "result", "producerTask": "export"}
        for name, source in spec["inputs"].get("artifacts", {}).items():
            producer = source.get("taskOutputArtifact", {}).get("producerTask") or source["componentInputArtifact"]
            for step in steps_in(compiled, producer) if producer in all_tasks(compiled) else {"prepare-data"}:
                assert ORDER.index(step) < ORDER.index(task), f"{task}.{name} from {step}"


# The train-tfjob step's inputs named apart from the pipeline parameter that feeds them.
TFJOB_PARAMETERS = {
    "workers": "distributed_workers",
    "storage_claim": "tfjob_storage_claim",
    "deadline_seconds": "tfjob_deadline_seconds",
}


def _parsed(parser_factory, args):
    return parser_factory().parse_args(args)


def test_train_args_parse_with_mnist_trains_own_parser_to_the_defaults(compiled):
    from mnist_trainer.config import parse_config

    config = parse_config(resolved_args(compiled, "train"), environ={})
    env = parameters.training_env()
    assert (config.epochs, config.batch_size, config.seed) == (
        int(env["EPOCHS"]),
        int(env["BATCH_SIZE"]),
        int(env["SEED"]),
    )
    assert config.learning_rate == float(env["LEARNING_RATE"]) and config.limit is None
    assert (config.data_dir, config.model_dir) == ("/kfp/inputs/data", "/kfp/outputs/model")


def test_export_args_parse_with_mnist_exports_own_parser(compiled):
    from mnist_exporter.cli import build_parser

    args = build_parser().parse_args(resolved_args(compiled, "export"))
    assert (args.train_dir, args.data_dir) == ("/kfp/inputs/model", "/kfp/inputs/data")
    assert args.min_accuracy == 0.97 and args.max_regression == 0.005 and args.keep == 3
    assert args.result_file == "/kfp/outputs/result" and not args.force


def test_evaluate_and_publish_args_parse_with_their_own_parsers(compiled):
    from mnist_exporter import evaluate, publish

    evaluated = evaluate.build_parser().parse_args(resolved_args(compiled, "evaluate"))
    assert evaluated.metrics_out == "/kfp/outputs/metrics" and evaluated.executor_input == "{}"
    published = publish.build_parser().parse_args(resolved_args(compiled, "publish"))
    assert published.canary_percent == 10.0


def test_prepare_data_args_are_flags_mnist_data_has(compiled):
    help_text = subprocess.run([f"{VENV_BIN}/mnist-data", "--help"], capture_output=True, text=True, timeout=60).stdout
    flags = [arg for arg in resolved_args(compiled, "prepare-data") if arg.startswith("--")]
    assert flags and all(flag in help_text for flag in flags), flags


def test_evaluate_hands_the_ui_kfps_metrics_artifacts_and_the_executor_input(compiled):
    component = compiled["components"][tasks(compiled)["evaluate"]["componentRef"]["name"]]
    outputs = {
        name: spec["artifactType"]["schemaTitle"] for name, spec in component["outputDefinitions"]["artifacts"].items()
    }
    assert outputs == {
        "metrics": "system.Metrics",
        "confusion_matrix": "system.ClassificationMetrics",
        "model_card": "system.Markdown",
    }
    args = container(compiled, "evaluate")["args"]
    assert args[args.index("--executor-input") + 1] == "{{$}}"


def test_the_trainer_asks_for_what_the_clusters_trainer_job_asks(compiled):
    resources = container(compiled, "train")["resources"]
    assert resources["cpuRequest"] == 1 and resources["cpuLimit"] == 2
    assert resources["memoryRequest"] == 2 and resources["memoryLimit"] == 4


@pytest.mark.parametrize(
    ("images", "defaults", "message"),
    [
        ({"mnist-trainer": IMAGES["mnist-trainer"]}, MAKE_DEFAULTS, "mnist-model-exporter"),
        (IMAGES, MAKE_DEFAULTS | {"CANARY_PERCENT": "100"}, "CANARY_PERCENT=100 must be above 0 and below 100"),
        (IMAGES, MAKE_DEFAULTS | {"KEEP_VERSIONS": "three"}, "KEEP_VERSIONS='three' is not a int"),
    ],
)
def test_compile_refuses_what_cannot_make_a_pipeline(tmp_path, images, defaults, message):
    done = kfp_module(*compile_args(tmp_path / "p.yaml", images, defaults))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "p.yaml").exists()


def test_an_empty_canary_percent_is_the_rollouts_default(tmp_path):
    from mnist_common.rollout.transitions import DEFAULT_CANARY_PERCENT

    assert parameters.make_defaults([f"{k}={v}" for k, v in MAKE_DEFAULTS.items()] + ["CANARY_PERCENT="])[
        "canary_percent"
    ] == float(DEFAULT_CANARY_PERCENT)


def test_make_pipeline_compiles_the_content_tagged_images_with_makes_settings():
    tags = dict(line.split("=", 1) for line in make("image-tags").stdout.split())
    dry = make("-n", "pipeline", "CANARY_PERCENT=7").stdout
    for name in IMAGE_FIELD.values():
        assert f"--image {name}=mnist.local/{name}:{tags[name]}" in dry
    assert "--default CANARY_PERCENT=7" in dry and "--out artifacts/pipeline/mnist.yaml" in dry


def test_pipeline_submit_refuses_without_a_host(tmp_path):
    package = tmp_path / "p.yaml"
    assert kfp_module(*compile_args(package)).returncode == 0
    done = kfp_module("submit", "--package", str(package), "--set", "model_base_path=gs://b/models/mnist")
    assert done.returncode == 2 and "no Kubeflow Pipelines host: set KFP_HOST" in done.stderr
    done = kfp_module("submit", "--host", "http://127.0.0.1:9", "--package", str(package))
    assert done.returncode == 2 and "model_base_path is not set" in done.stderr


def test_make_pipeline_submit_without_a_host_says_what_to_set(tmp_path):
    done = make("pipeline-submit", "KFP_HOST=", "GCS_BUCKET=b", f"PIPELINE_PACKAGE={tmp_path}/mnist.yaml", timeout=300)
    assert done.returncode != 0
    assert "pipeline-submit: error: no Kubeflow Pipelines host: set KFP_HOST=" in done.stderr


def branch_condition(ir: dict, step: str) -> str:
    """The trigger condition (a CEL expression) of the condition DAG a step sits in."""
    for name, component in ir["components"].items():
        if "dag" in component and step in component["dag"]["tasks"]:
            for task in all_tasks(ir).values():
                if task["componentRef"]["name"] == name:
                    return task["triggerPolicy"]["condition"]
    raise AssertionError(f"{step} is not inside a condition")


def test_distributed_workers_picks_exactly_one_train_branch(compiled):
    single = branch_condition(compiled, "train")
    workers = "int(inputs.parameter_values['pipelinechannel--distributed_workers'])"
    assert single == f"{workers} < 2"
    assert branch_condition(compiled, "train-tfjob") == f"!({single})"  # dsl.Else: the other case exactly
    assert pipeline_defaults(compiled)["distributed_workers"] == 0  # a single container unless asked


def test_export_reads_the_model_of_whichever_branch_ran(compiled):
    source = tasks(compiled)["export"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
    outer = compiled["components"][all_tasks(compiled)[source["producerTask"]]["componentRef"]["name"]]
    selectors = outer["dag"]["outputs"]["artifacts"][source["outputArtifactKey"]]["artifactSelectors"]
    producers = set()
    for selector in selectors:
        inner = compiled["components"][all_tasks(compiled)[selector["producerSubtask"]]["componentRef"]["name"]]
        for chosen in inner["dag"]["outputs"]["artifacts"][selector["outputArtifactKey"]]["artifactSelectors"]:
            assert chosen["outputArtifactKey"] == "model"
            producers.add(chosen["producerSubtask"])
    assert producers == {"train", "train-tfjob"}


def test_the_tfjob_step_ships_the_clusters_own_tfjob_and_parses_with_its_own_parser(compiled):
    from mnist_trainer import tfjob_run

    manifest = yaml.safe_load((KUSTOMIZE / "components" / "distributed-training" / "tfjob.yaml").read_text())
    args = tfjob_run._parser().parse_args(resolved_args(compiled, "train-tfjob"))
    assert json.loads(args.tfjob_manifest) == manifest  # the kustomize file itself, not a restatement
    assert args.image == IMAGES["mnist-trainer"]  # the TFJob's pods run the content-tagged trainer
    assert args.run_id == "{{$.pipeline_job_uuid}}"  # KFP's run id: one TFJob per run
    assert args.storage_dir == tfjob_run.storage_mount_path(manifest)
    claim = next(v for v in manifest["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["volumes"])
    assert args.storage_claim == claim["persistentVolumeClaim"]["claimName"]
    assert args.deadline_seconds == manifest["spec"]["runPolicy"]["activeDeadlineSeconds"]
    assert (args.data_dir, args.model_dir) == ("/kfp/inputs/data", "/kfp/outputs/model")
    single = {a.split("=")[0] for a in resolved_args(compiled, "train") if a.startswith("--")} - {"--data-dir"}
    assert {"--epochs", "--batch-size", "--learning-rate", "--seed"} <= single
    env = parameters.training_env()
    assert (args.epochs, args.batch_size, args.seed) == (env["EPOCHS"], env["BATCH_SIZE"], env["SEED"])


def test_the_tfjob_step_mounts_the_claim_the_tfjobs_pods_mount(compiled, platform):
    from mnist_trainer import tfjob_run

    manifest = yaml.safe_load((KUSTOMIZE / "components" / "distributed-training" / "tfjob.yaml").read_text())
    label = compiled["components"][tasks(compiled)["train-tfjob"]["componentRef"]["name"]]["executorLabel"]
    executors = platform["deploymentSpec"]["executors"]
    assert set(executors) == {label}  # only the TFJob step needs anything of Kubernetes
    (mount,) = executors[label]["pvcMount"]
    assert mount["mountPath"] == tfjob_run.storage_mount_path(manifest)
    assert mount["pvcNameParameter"] == {"componentInputParameter": "pipelinechannel--tfjob_storage_claim"}
