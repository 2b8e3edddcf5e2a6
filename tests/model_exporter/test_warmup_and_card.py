"""assets.extra holds parseable warmup requests that work, and a complete model card."""

from __future__ import annotations

import json
import os

import numpy as np
from tensorflow_serving.apis import prediction_log_pb2

from mnist_common.dataset import dataset_sha256
from mnist_exporter.warmup import WARMUP_BATCH_SIZES, read_warmup_file, run_request


def test_warmup_records_are_prediction_logs_that_succeed(published_base, loaded_version):
    path = os.path.join(published_base, "1", "assets.extra", "tf_serving_warmup_requests")
    logs = read_warmup_file(path)
    assert all(isinstance(log, prediction_log_pb2.PredictionLog) for log in logs)
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)

    seen = {}
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "mnist"
        signature = request.model_spec.signature_name
        outputs = run_request(loaded_version, request)
        batch = next(iter(request.inputs.values())).tensor_shape.dim[0].size
        assert outputs["probabilities"].shape == (batch, 10)
        assert outputs["classes"].shape == (batch,)
        np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=1e-5)
        seen.setdefault(signature, []).append(batch)
    assert seen == {
        "serving_default": list(WARMUP_BATCH_SIZES),
        "predict_image_bytes": list(WARMUP_BATCH_SIZES),
    }


def test_model_card_describes_the_version(published_base, trained_dir, data_dir):
    with open(os.path.join(published_base, "1", "assets.extra", "model_card.json")) as handle:
        card = json.load(handle)
    with open(os.path.join(trained_dir, "metrics.json")) as handle:
        training = json.load(handle)

    assert card["dataset_sha256"] == dataset_sha256(data_dir)
    assert card["training"] == training  # trainer parameters travel with the version
    assert 0.5 <= card["validation"]["accuracy"] <= 1.0
    assert card["validation"]["digits"] > 100
    assert card["validation"]["image_bytes_agreement"] >= 0.99
    assert card["gate"]["min_accuracy"] == 0.5 and card["gate"]["compared_with_version"] is None
    assert len(card["git_commit"]) == 40 or card["git_commit"] == "unknown"
    assert card["created"].endswith("+00:00")
    assert len(card["source"]["model_keras_sha256"]) == 64
