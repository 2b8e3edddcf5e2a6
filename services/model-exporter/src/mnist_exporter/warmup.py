"""assets.extra/tf_serving_warmup_requests: real requests TF Serving replays before serving.

TF Serving reads this TFRecord file of tensorflow.serving.PredictionLog records when it loads a
version and runs each request once, so the first client request does not pay for graph
optimisation. We store a few requests per signature at different batch sizes, built from real
validation digits, and the validation gate replays them against the exported signatures.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from mnist_common.pipeline import ASSETS_EXTRA_DIR as WARMUP_DIR
from mnist_common.pipeline import WARMUP_FILE
from mnist_exporter.saved_model import (
    DEFAULT_SIGNATURE,
    IMAGE_BYTES_INPUT,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_INPUT,
)

# Batch sizes of the stored requests, per signature: a single digit (the web UI) and small
# batches (load tests), so the common shapes are warm.
WARMUP_BATCH_SIZES = (1, 4, 16)


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 [28, 28] digit as PNG bytes, what a client would upload."""
    return tf.io.encode_png(image.reshape(28, 28, 1)).numpy()


def _request(model_name: str, signature: str, input_name: str, tensor) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
    request.inputs[input_name].CopyFrom(tensor)
    return request


def build_warmup_logs(digits: np.ndarray, model_name: str) -> list[prediction_log_pb2.PredictionLog]:
    """PredictionLog records for both signatures; digits: uint8 [N, 28, 28], N >= 16."""
    if len(digits) < max(WARMUP_BATCH_SIZES):
        raise ValueError(f"need at least {max(WARMUP_BATCH_SIZES)} digits, got {len(digits)}")
    logs = []
    for batch_size in WARMUP_BATCH_SIZES:
        batch = digits[:batch_size]
        images = tf.make_tensor_proto(batch.astype(np.float32) / 255.0, dtype=tf.float32)
        encoded = tf.make_tensor_proto([encode_png(image) for image in batch], dtype=tf.string, shape=[batch_size])
        for signature, input_name, tensor in (
            (DEFAULT_SIGNATURE, IMAGES_INPUT, images),
            (IMAGE_BYTES_SIGNATURE, IMAGE_BYTES_INPUT, encoded),
        ):
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(
                        request=_request(model_name, signature, input_name, tensor)
                    )
                )
            )
    return logs


def write_warmup_file(export_dir: str, logs: list[prediction_log_pb2.PredictionLog]) -> str:
    folder = tf.io.gfile.join(export_dir, WARMUP_DIR)
    tf.io.gfile.makedirs(folder)
    path = tf.io.gfile.join(folder, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_file(path: str) -> list[prediction_log_pb2.PredictionLog]:
    """Parse every record; a record that is not a PredictionLog raises DecodeError."""
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        logs.append(prediction_log_pb2.PredictionLog.FromString(record))
    return logs


def run_request(loaded_saved_model, request: predict_pb2.PredictRequest) -> dict[str, np.ndarray]:
    """Run a PredictRequest the way TF Serving does: signature by name, inputs by alias."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE  # TF Serving's default too
    signature = loaded_saved_model.signatures[name]
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    outputs = signature(**inputs)
    return {name: value.numpy() for name, value in outputs.items()}
