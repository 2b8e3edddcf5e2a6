"""`make pipeline-submit`: upload the compiled pipeline to a Kubeflow cluster (a new version of the
pipeline `mnist`, named by the package's content hash and the time) and start a run of it, through kfp.Client.

Refused, before anything is sent, without a host or without model_base_path (the bucket the
cluster's TF Serving reads, gs://BUCKET/models/mnist): a run needs both.
"""

from __future__ import annotations

import datetime
import hashlib
import sys

import yaml
from mnist_kfp.local_run import LocalRunError, ir_parameter_types, typed_arguments
from mnist_kfp.pipeline import NAME


def main(args) -> int:
    if not args.host:
        print(
            "pipeline-submit: error: no Kubeflow Pipelines host: set KFP_HOST=https://... (the KFP API, e.g. the "
            "Kubeflow dashboard's /pipeline) and KFP_NAMESPACE=your profile namespace",
            file=sys.stderr,
        )
        return 2
    with open(args.package, "rb") as handle:
        raw = handle.read()
    package = next(yaml.safe_load_all(raw))  # the pipeline spec; the platform spec follows it
    given = dict(pair.split("=", 1) for pair in args.set)
    if not given.get("model_base_path"):
        print(
            "pipeline-submit: error: model_base_path is not set: KFP_MODEL_BASE_PATH=gs://BUCKET/models/mnist "
            "(the bucket the cluster's TF Serving reads)",
            file=sys.stderr,
        )
        return 2
    try:
        arguments = typed_arguments(given, ir_parameter_types(package))
    except LocalRunError as error:
        print(f"pipeline-submit: error: {error}", file=sys.stderr)
        return 2

    import kfp

    # The package's content hash says what ran; the time keeps a resubmission's name unique.
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    version_name = f"{NAME}-{hashlib.sha256(raw).hexdigest()[:12]}-{stamp}"
    client = kfp.Client(host=args.host, namespace=args.namespace or "kubeflow")
    namespace = args.namespace or None
    pipeline_id = client.get_pipeline_id(NAME)
    if pipeline_id is None:
        uploaded = client.upload_pipeline(args.package, pipeline_name=NAME, namespace=namespace)
        pipeline_id = uploaded.pipeline_id
        version_id = client.list_pipeline_versions(pipeline_id).pipeline_versions[0].pipeline_version_id
    else:
        version = client.upload_pipeline_version(args.package, version_name, pipeline_id=pipeline_id)
        version_id = version.pipeline_version_id
    experiment = client.create_experiment(args.experiment, namespace=namespace)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=args.run_name or version_name,
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=version_id,
    )
    print(f"pipeline-submit: started run {run.run_id} of {NAME} ({version_name}) in experiment {args.experiment}")
    return 0
