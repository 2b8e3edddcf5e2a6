"""Every error leaves as a short JSON reason (API) or a plain page: never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and the reason to show."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def json_error(status: int, reason: str):
    response = jsonify({"error": reason, "status": status})
    response.status_code = status
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/readyz", "/healthz")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return json_error(error.status, error.reason)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        reason = error.description or error.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            reason = f"the request body is larger than {limit} bytes"
        if _wants_json():
            response = json_error(status, reason)
        else:
            page = render_template("error.html", status=status, title=error.name, reason=reason)
            response = app.make_response((page, status))
        # Keep what the error itself says about the request, e.g. the Allow header of a 405.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        # Logged with its traceback for the operator; the client only learns that it failed.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return json_error(500, "internal error")
        return render_template("error.html", status=500, title="Internal error", reason=""), 500
