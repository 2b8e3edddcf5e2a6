"""Does a SavedModel load and answer in the TensorFlow runtime that TF Serving is built from?

Run with the Python of the serving-compatibility venv (`make serving-compat-setup`: the
TensorFlow release of the pinned tensorflow/serving image), on a version folder that this
repository's TensorFlow exported:

    artifacts/serving-compat/venv/bin/python services/model-exporter/src/mnist_exporter/serving_runtime_check.py MODEL_VERSION_DIR

It imports nothing but TensorFlow and the standard library, so it runs there by its path. It
does what TF Serving's loader does (tensorflow/cc/saved_model/loader.cc, LoadSavedModel, through
tensorflow_serving/servables/tensorflow/saved_model_bundle_factory.cc): read the SavedModel's
MetaGraphDef tagged `serve`, check its GraphDef versions and every op (the graph's and its
functions') against this runtime's op registry; then load it with this runtime and call each
signature on a sample (Python's loader, tf.saved_model.load: the functions and variables the C++
loader would run, though not its code). Prints one JSON line; exit status 0 if the runtime serves the model, 1 if
not (the line says why), 2 for a missing folder.
"""

from __future__ import annotations

import json
import os
import sys

SERVE_TAG = "serve"
# A 28x28 grey PNG for the image-bytes signature, made in the runtime itself.
SIDE = 28


def _ops(meta_graph) -> set[str]:
    graph = meta_graph.graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    # Functions are called by name like ops; they are defined in the library, not registered.
    return ops - {function.signature.name for function in graph.library.function}


def check(version_dir: str) -> dict:
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry, versions

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    report = {
        "runtime": tf.version.VERSION,
        "saved_model_schema_version": saved.saved_model_schema_version,
        "problems": [],
    }
    serving = [meta for meta in saved.meta_graphs if SERVE_TAG in meta.meta_info_def.tags]
    if not serving:
        report["problems"].append(f"no MetaGraphDef tagged {SERVE_TAG!r}")
        return report
    meta = serving[0]
    graph_versions = meta.graph_def.versions
    report["graph_def_versions"] = {
        "producer": graph_versions.producer,
        "min_consumer": graph_versions.min_consumer,
        "runtime": versions.GRAPH_DEF_VERSION,
        "runtime_min_producer": versions.GRAPH_DEF_VERSION_MIN_PRODUCER,
    }
    # tensorflow/core/framework/versions.cc, CheckVersions: what the C++ loader refuses.
    if graph_versions.min_consumer > versions.GRAPH_DEF_VERSION:
        report["problems"].append(
            f"the graph needs a consumer of version {graph_versions.min_consumer}; this runtime is {versions.GRAPH_DEF_VERSION}"
        )
    if graph_versions.producer < versions.GRAPH_DEF_VERSION_MIN_PRODUCER:
        report["problems"].append(f"the graph's producer version {graph_versions.producer} is too old")
    ops = _ops(meta)
    report["ops"] = len(ops)
    unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
    if unknown:
        report["problems"].append(f"ops this runtime does not have: {', '.join(unknown)}")
    # __saved_model_init_op is the loader's own entry, not a signature clients call.
    report["signatures"] = sorted(name for name in meta.signature_def if not name.startswith("__"))
    if report["problems"]:
        return report

    loaded = tf.saved_model.load(version_dir, tags=[SERVE_TAG])
    image = tf.io.encode_png(tf.fill([SIDE, SIDE, 1], tf.constant(128, tf.uint8)))
    samples = {"images": tf.fill([1, SIDE, SIDE], 0.5), "image_bytes": tf.reshape(image, [1])}
    answers = {}
    for name in report["signatures"]:
        function = loaded.signatures[name]
        inputs = function.structured_input_signature[1]
        missing = sorted(set(inputs) - set(samples))
        if missing:
            report["problems"].append(f"signature {name}: no sample for inputs {missing}")
            return report
        outputs = function(**{key: samples[key] for key in inputs})
        answers[name] = {key: value.numpy().tolist() for key, value in outputs.items()}
    report["answers"] = answers
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: serving_runtime_check.py MODEL_VERSION_DIR", file=sys.stderr)
        return 2
    version_dir = args[0]
    if not os.path.isfile(os.path.join(version_dir, "saved_model.pb")):
        print(
            f"error: {version_dir} has no saved_model.pb (give a version folder, e.g. artifacts/models/mnist/1)",
            file=sys.stderr,
        )
        return 2
    try:
        report = check(version_dir)
    except Exception as error:  # the runtime's own refusal: what TF Serving would log
        report = {"problems": [f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"]}
    print(json.dumps(report))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
