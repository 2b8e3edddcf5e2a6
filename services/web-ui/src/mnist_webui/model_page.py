"""The /model page and its JSON under /api/v1/model/: what each version the model server holds
is (its card), how good it is on held-out digits, how it learned, and how a release is going.

The page is a shell; model.js draws it from the same JSON a script reads
(/api/v1/model/versions once, /api/v1/model/live every few seconds). None of it touches the
predict path: the cards and evaluations are files the exporter wrote, the live figures are the
counters the predicts already keep.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, jsonify, render_template

from mnist_common.rollout import guard
from mnist_common.rollout.model_config import CANARY, STABLE
from mnist_webui.api import rollout_json
from mnist_webui.errors import ApiError
from mnist_webui.extensions import webui
from mnist_webui.live import LiveFigures, verdict_json
from mnist_webui.model_cards import ModelCards

log = logging.getLogger(__name__)
bp = Blueprint("model_page", __name__)
KEY = "mnist_webui.model_page"


@dataclass
class ModelPage:
    cards: ModelCards
    live: LiveFigures
    policy: guard.PromotePolicy


def install(app: Flask) -> None:
    settings = webui_settings(app)
    try:
        policy = guard.load_policy(settings.rollout_policy_file)
    except guard.PolicyError as error:
        raise SystemExit(f"ROLLOUT_POLICY_FILE: {error}") from None
    app.extensions[KEY] = ModelPage(
        ModelCards(settings.model_base_path),
        LiveFigures(app.extensions["mnist_webui"].metrics, settings.live_sample_seconds),
        policy,
    )
    app.register_blueprint(bp)


def webui_settings(app: Flask):
    return app.extensions["mnist_webui"].settings


def page() -> ModelPage:
    return current_app.extensions[KEY]


def held_versions() -> tuple[list[tuple[int, str]], str | None]:
    """[(version, role)] the model server holds, stable first; and a note when it is a guess.

    With a rollout the roles are its labels; without, the versions the server reports
    AVAILABLE (the newest answers every predict)."""
    state = webui().model.rollout_state()
    if state is not None:
        held = [(state.stable, STABLE)]
        if state.canary is not None:
            held.append((state.canary, CANARY))
        return held, None
    try:
        status = webui().model.status()
    except ApiError as error:
        published = page().cards.published()
        note = f"the model server did not answer ({error.reason}); showing the newest published version"
        return ([(published[-1], "latest")] if published else []), note
    available = sorted(v.version for v in status.versions if v.state == "AVAILABLE")
    return [(v, "latest" if v == available[-1] else "loaded") for v in reversed(available)], None


@bp.get("/model")
def model_html():
    page().live.ensure_started()
    return render_template(
        "model.html",
        model_name=webui().model.model_name,
        sample_seconds=page().live.sample_seconds,
    )


@bp.get("/api/v1/model/versions")
def versions_json():
    held, note = held_versions()
    views = []
    for version, role in held:
        view = dict(page().cards.view(version))
        view["role"] = role
        views.append(view)
    return jsonify(
        {
            "model_name": webui().model.model_name,
            "rollout": rollout_json(webui().model.rollout_state()),
            "versions": views,
            "note": note or page().cards.unavailable(),
        }
    )


@bp.get("/api/v1/model/versions/<int:version>")
def version_json(version: int):
    cards = page().cards
    if cards.unavailable():  # not a fault of this request, nor one that retrying mends
        raise ApiError(404, f"version {version} cannot be described here: {cards.unavailable()}")
    if version not in cards.published():
        raise ApiError(404, f"version {version} is not published")
    return jsonify(cards.view(version))


@bp.get("/api/v1/model/live")
def live_json():
    live = page().live
    live.ensure_started()
    state = webui().model.rollout_state()
    series = live.series()
    roles = {}
    if state is not None:
        roles = {state.stable: STABLE, **({state.canary: CANARY} if state.canary is not None else {})}
    return jsonify(
        {
            "now": round(time.time(), 3),
            "sample_seconds": live.sample_seconds,
            "rollout": rollout_json(state),
            "versions": [
                {"version": version, "role": roles.get(version), "series": points}
                for version, points in sorted(series.items())
            ],
            # The newest sample's totals (at most LIVE_SAMPLE_SECONDS old): the same figures the
            # charts end with, without reading every worker's counters once more per request.
            "guard": verdict_json(state, live.latest_totals(), page().policy),
        }
    )
