#!/usr/bin/env bash
# Quickstart "only try serving": a quick model, the model server, then one prediction over REST
# in each form (rows of floats; a PNG as b64) and one over gRPC from Python. From the repository
# root: `bash docs/quickstart-serving.sh`, or paste everything below this header into a shell.
# README.md shows this file from its first command on, byte for byte (tests/conventions checks
# that); tests/run/test_quickstart_serving.py runs that block as pasted, on free ports.

(  # One subshell: its settings, its variables and its exit stay out of the shell it is pasted into.
set -euo pipefail
# 0. Set-up: the ports (the defaults unless set) and the venv's Python.
export GRPC_PORT=${GRPC_PORT:-8500} REST_PORT=${REST_PORT:-8501}
PY=${VENV:-.venv}/bin/python
# Its ports are free? A server already there (a `make run`?) must not answer in its place.
"${VENV:-.venv}/bin/mnist-run" check-ports --command "make serve" GRPC_PORT="$GRPC_PORT" REST_PORT="$REST_PORT"

# 1. A model in under a minute, published as a version (does nothing if one is there).
make quick-model

# 2. The TF Serving stand-in on it, in the background; wait until the model is AVAILABLE.
make serve & server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -rf "${body:-}"' EXIT  # the end stops it
for _ in $(seq 120); do
  curl -sf "http://localhost:$REST_PORT/v1/models/mnist" | grep -q AVAILABLE && break
  kill -0 "$server" 2>/dev/null || { echo "error: make serve stopped (its message is above)" >&2; exit 1; }
  sleep 1
done

# 3. A held-out digit as request bodies: 28 rows of 28 floats in [0, 1], and the same as a PNG.
body=$(mktemp -d)
"$PY" - "$body" <<'PYTHON'
import base64, io, json, sys
from PIL import Image
from mnist_common.dataset import load_split
digit = load_split("artifacts/data/mnist", "test", limit=1).images[0]
json.dump({"instances": [(digit / 255).round(3).tolist()]}, open(f"{sys.argv[1]}/rows.json", "w"))
png = io.BytesIO()
Image.fromarray(digit).save(png, format="PNG")
json.dump({"signature_name": "predict_image_bytes",
           "instances": [{"b64": base64.b64encode(png.getvalue()).decode()}]}, open(f"{sys.argv[1]}/b64.json", "w"))
PYTHON

# 4. REST, both forms: each answers {"predictions": [{"probabilities": [...10], "classes": N}]}.
curl -s -X POST "http://localhost:$REST_PORT/v1/models/mnist:predict" -d @"$body/rows.json"; echo
curl -s -X POST "http://localhost:$REST_PORT/v1/models/mnist:predict" -d @"$body/b64.json"; echo

# 5. gRPC, TF Serving's PredictionService from Python (the tensorflow-serving-api package).
"$PY" - "$body" <<'PYTHON'
import json, os, sys
from mnist_common.quiet_start import quiet_tensorflow
quiet_tensorflow()  # this repository's helper: TensorFlow loads without its start-up lines
import grpc, numpy as np, tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
rows = np.array(json.load(open(f"{sys.argv[1]}/rows.json"))["instances"], dtype=np.float32)
request = predict_pb2.PredictRequest()
request.model_spec.name = "mnist"
request.inputs["images"].CopyFrom(tf.make_tensor_proto(rows))
channel = grpc.insecure_channel(f"localhost:{os.environ['GRPC_PORT']}")
reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
print("gRPC: class", tf.make_ndarray(reply.outputs["classes"])[0])
PYTHON
)
