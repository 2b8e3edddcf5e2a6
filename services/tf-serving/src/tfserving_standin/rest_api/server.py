"""TF Serving's REST API on aiohttp: the same URLs, bodies and status codes.

GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict     (also :classify, :regress)
GET  {monitoring path}                                        Prometheus metrics, when enabled
Errors are {"error": "..."} with the HTTP status TF Serving maps the canonical code to.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse

import orjson
from aiohttp import web
from aiohttp.http import HttpVersion11

from tfserving_standin.core.api import ServingApi, metadata_json, status_json
from tfserving_standin.core.errors import ServingError, invalid_argument
from tfserving_standin.rest_api import json_codec as rest_json
from tfserving_standin.rest_api.connection import drop_server_header

log = logging.getLogger(__name__)

# The same patterns as TF Serving's http_rest_api_util.cc (case-insensitive, like RE2's (?i)).
_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)", re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)
_INT64_MAX = 2**63 - 1
_JSON = "application/json"


def _version(text: str | None) -> int | None:
    if not text:
        return None
    value = int(text)
    if value > _INT64_MAX:
        raise invalid_argument(f"Failed to convert version: {text} to numeric.")
    return value


def _malformed(method: str, path: str) -> ServingError:
    # Built only when a request is refused: a predict's hot path makes no error object.
    return invalid_argument(f"Malformed request: {method} {path}")


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON)


class _SlowClient(Exception):
    """The client did not send its request body within the client timeout."""


class _ClientGone(Exception):
    """The connection closed before the request body was read: nobody is left to answer."""


class RestFrontEnd:
    def __init__(
        self,
        api: ServingApi,
        metrics=None,
        monitoring=None,
        max_request_bytes: int = 4 << 20,
        client_timeout_seconds: float = 5.0,
        allowed_origins: frozenset[str] = frozenset(),
    ):
        self._api = api
        self._allowed_origins = allowed_origins
        self._client_timeout = client_timeout_seconds
        self._metrics = metrics
        self._metrics_path = monitoring.prometheus_path if monitoring and monitoring.prometheus_enabled else None
        self._max_request_bytes = max_request_bytes

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_request_bytes, handler_args={"max_field_size": 16384})
        # [\s\S], not ".": a path may hold an encoded newline (%0A), which "." does not match;
        # aiohttp would then answer its own text 404 instead of a JSON error.
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self._dispatch, expect_handler=self._expect)
        app.on_response_prepare.append(drop_server_header)
        return app

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """`Expect: 100-continue`: a body declared over the limit is refused before it is invited."""
        if request.version != HttpVersion11:
            return None
        if request.headers.get("Expect", "").lower() != "100-continue":
            response = _json_response(rest_json.error_body("Only Expect: 100-continue is supported"), 417)
            response.force_close()
            return response
        if request.content_length is not None and request.content_length > self._max_request_bytes:
            response = _json_response(
                rest_json.error_body(f"Request body larger than the limit of {self._max_request_bytes} bytes"), 413
            )
            response.force_close()
            return response
        if self._foreign_origin(request):
            return self._refuse_origin(request)
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper is still to come
        return None

    def _foreign_origin(self, request: web.Request) -> bool:
        """A browser names the page's origin on cross-origin requests (and on every POST); a
        "simple" request (text/plain, a form) is sent without a preflight, so the only defence
        is to refuse it here. Clients that are not browsers send no Origin."""
        origin = request.headers.get("Origin")
        return origin is not None and origin not in self._allowed_origins

    def _refuse_origin(self, request: web.Request) -> web.Response:
        response = _json_response(
            rest_json.error_body(
                "Requests from web pages of another origin are refused; "
                "allow the origin with --rest_api_allowed_origins"
            ),
            403,
        )
        response.force_close()  # the body, if any, is not read
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if self._foreign_origin(request):
            return self._refuse_origin(request)
        if self._metrics_path and path == self._metrics_path and self._metrics is not None:
            if request.method != "GET":
                return web.Response(status=405, text="Use GET\n")
            return web.Response(body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type})
        started = time.perf_counter()
        model_name, version, api_name, status = "", None, "unknown", "OK"
        try:
            if not path.lower().startswith("/v1/"):
                return _json_response(rest_json.error_body(f"Not found: {request.method} {path}"), 404)
            if request.method == "POST":
                match = _PREDICT_PATH.fullmatch(path)
                if not match or match.group(4) not in ("predict", "classify", "regress"):
                    raise _malformed(request.method, path)
                model_name = urllib.parse.unquote(match.group(1))
                api_name = match.group(4)
                version_number = _version(match.group(2))
                label = urllib.parse.unquote(match.group(3)) if match.group(3) else None
                body, version = await self._predict(request, api_name, model_name, version_number, label)
                return _json_response(body)
            if request.method == "GET":
                match = _STATUS_PATH.fullmatch(path)
                if not match:
                    raise _malformed(request.method, path)
                model_name = urllib.parse.unquote(match.group(1) or "")
                if not model_name:
                    raise invalid_argument("Missing model name in request.")
                version_number = _version(match.group(2))
                label = urllib.parse.unquote(match.group(3)) if match.group(3) else None
                if version_number is not None and label is not None:
                    raise _malformed(request.method, path)
                if match.group(4):
                    api_name = "get_model_metadata"
                    response = self._api.model_metadata(model_name, version_number, label)
                    version = response.model_spec.version.value
                    return _json_response(orjson.dumps(metadata_json(response), option=orjson.OPT_INDENT_2))
                api_name = "get_model_status"
                body = orjson.dumps(
                    status_json(self._api.model_status(model_name, version_number, label)), option=orjson.OPT_INDENT_2
                )
                return _json_response(body)
            raise _malformed(request.method, path)
        except ServingError as error:
            status = error.code_name
            return _json_response(rest_json.error_body(error.message), error.http_status)
        except _SlowClient:
            status = "DEADLINE_EXCEEDED"
            response = _json_response(
                rest_json.error_body(f"Request body not received within {self._client_timeout:g} s"), 408
            )
            response.force_close()  # the rest of the body may still be on its way
            return response
        except _ClientGone:
            status = "CANCELLED"
            return _json_response(rest_json.error_body("The client closed the connection"), 499)
        except web.HTTPRequestEntityTooLarge:
            status = "RESOURCE_EXHAUSTED"
            return _json_response(
                rest_json.error_body(f"Request body larger than the limit of {self._max_request_bytes} bytes"), 413
            )
        except Exception:  # noqa: BLE001 - never a stack trace in a response
            status = "INTERNAL"
            log.exception("REST %s %s failed", request.method, path)
            return _json_response(rest_json.error_body("Internal error; see the server log"), 500)
        finally:
            if self._metrics is not None and api_name != "unknown":
                self._metrics.observe(model_name, version, api_name, "REST", status, time.perf_counter() - started)

    async def _predict(self, request, method, model_name, version_number, label):
        try:
            # Counted from when the head arrived: a client trickling its body is cut, not waited for.
            async with asyncio.timeout(self._client_timeout):
                body = await request.read()
        except TimeoutError:
            raise _SlowClient from None
        except ConnectionError:  # the client left, or the connection refused the request (413)
            raise _ClientGone from None
        document = rest_json.parse_body(body)
        signature_name = rest_json.signature_name(document)
        if method != "predict":
            self._api.unsupported_method(model_name, version_number, label, signature_name, method)
        state, signature = self._resolve(model_name, version_number, label, signature_name)
        form, inputs = rest_json.inputs_from_document(document, signature.inputs)
        outputs = await self._api.predict(state, signature, inputs)
        return rest_json.predict_response(form, outputs), state.version

    def _resolve(self, model_name, version_number, label, signature_name):
        state = self._api.manager.resolve(model_name, version_number, label)
        if (signature_name or "serving_default") not in state.servable.signatures:
            # REST says it with TF Serving's REST wording (GetInfoMap), gRPC with Predict's.
            raise invalid_argument(
                f'Serving signature name: "{signature_name or "serving_default"}" not found in signature def'
            )
        return state, state.servable.signature(signature_name)
