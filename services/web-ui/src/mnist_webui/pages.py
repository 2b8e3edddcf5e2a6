"""The page a person opens. It is rendered with a first digit and its prediction, so it is
useful before (or without) any script; app.js then fetches new digits and predictions."""

from __future__ import annotations

from flask import Blueprint, render_template

from mnist_webui.api import random_sample, rollout_json, sample_json
from mnist_webui.errors import ApiError
from mnist_webui.extensions import webui

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    sample, prediction, problem = None, None, None
    try:
        drawn = random_sample()
        sample = sample_json(drawn)
        prediction = webui().model.predict(drawn.pixels)
    except ApiError as error:
        problem = error.reason
    return render_template(
        "index.html",
        sample=sample,
        prediction=prediction,
        problem=problem,
        model_name=webui().model.model_name,
        rollout=rollout_json(webui().model.rollout_state()),
    )
