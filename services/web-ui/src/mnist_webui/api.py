"""The JSON API under /api/v1 (described by /api/v1/openapi.json)."""

from __future__ import annotations

import logging
from importlib import resources

from flask import Blueprint, Response, jsonify, request

from mnist_webui import images
from mnist_webui.errors import ApiError
from mnist_webui.extensions import webui
from mnist_webui.samples import Sample, SamplesUnavailable
from mnist_webui.validation import parse_predict_request

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")

_OPENAPI = resources.files("mnist_webui").joinpath("openapi.json").read_bytes()


@bp.post("/predict")
def predict():
    if request.mimetype != "application/json":
        raise ApiError(415, "send the body as application/json")
    settings = webui().settings
    image, from_picture = parse_predict_request(request.get_data(), settings.max_image_pixels)
    answer = webui().model.predict(image)
    if from_picture:
        # What the model saw after MNIST-style preprocessing, so people can compare.
        answer["preprocessed"] = images.png_data_uri(image)
    return jsonify(answer)


def random_sample() -> Sample:
    try:
        return webui().digits.random()
    except SamplesUnavailable as error:
        raise ApiError(503, str(error)) from None


def sample_json(sample: Sample) -> dict:
    return {
        "index": sample.index,
        "label": sample.label,
        "pixels": [[round(float(v), 4) for v in row] for row in sample.pixels],
        "image": images.png_data_uri(sample.pixels),
    }


@bp.get("/sample")
def sample():
    return jsonify(sample_json(random_sample()))


@bp.get("/model")
def model():
    gateway = webui().model
    status = gateway.status()
    metadata = gateway.metadata()
    return jsonify(
        {
            "name": gateway.model_name,
            "protocol": gateway.client.protocol,
            "status": status_json(status),
            "metadata": metadata.to_dict(),
            "rollout": rollout_json(gateway.rollout_state()),
        }
    )


@bp.get("/model/status")
def model_status():
    """The version states and the rollout, without the metadata call: what a watcher polls
    (`make run`'s announcer) asks the model server for status only, never for inference."""
    gateway = webui().model
    return jsonify(
        {
            "name": gateway.model_name,
            "protocol": gateway.client.protocol,
            "status": status_json(gateway.status()),
            "rollout": rollout_json(gateway.rollout_state()),
        }
    )


def status_json(status) -> dict:
    """The model server's version status, its error messages said in our words: TF Serving's own
    (file paths, TensorFlow op and node names) go to the log, not to visitors."""
    body = status.to_dict()
    for version in body["versions"]:
        if version["error_code"] not in ("", "OK"):
            log.warning(
                "model %s version %s: %s: %s",
                status.model_name,
                version["version"],
                version["error_code"],
                version["error_message"],
            )
            version["error_message"] = (
                f"version {version['version']} could not be loaded "
                f"({version['error_code']}); the model server's log says why"
            )
    return body


def rollout_json(state) -> dict:
    """What serves: stable vN and canary vM at P %; policy `latest` when there is no rollout."""
    if state is None:
        return {"policy": "latest", "summary": "the newest version serves everything"}
    return {
        "policy": "labels",
        "stable": state.stable,
        "canary": state.canary,
        "canary_percent": state.canary_percent,
        "generation": state.generation,
        "summary": state.describe(),
    }


@bp.get("/openapi.json")
def openapi():
    return Response(_OPENAPI, mimetype="application/json")
