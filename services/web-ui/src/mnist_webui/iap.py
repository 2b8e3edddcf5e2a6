"""Identity-Aware Proxy: when IAP_AUDIENCE is set, every request must carry IAP's signed header.

IAP in front of the load balancer signs each request it lets through with an ES256 JWT in
`x-goog-iap-jwt-assertion`. Checking it here means a request that reaches the pod some other way
(from inside the cluster, around the balancer) is refused too. google-auth verifies the signature
against Google's published IAP keys, the audience (this backend service, from configuration) and
the expiry; the issuer is checked here. The load balancer's health checks carry no assertion, so
/healthz and /readyz are left open (they tell nothing but "up").
"""

from __future__ import annotations

import json
import logging
import threading
import time

from flask import Flask, request

from mnist_webui.errors import ApiError

log = logging.getLogger(__name__)

ASSERTION_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
IAP_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"
# Paths the load balancer's health check reaches without passing through IAP.
UNCHECKED_PATHS = frozenset(("/healthz", "/readyz"))
# Google rotates IAP's keys rarely and publishes new ones ahead of use; an unknown key id makes an
# early re-read (at most once a minute).
KEYS_MAX_AGE_S = 3600
KEYS_MIN_REREAD_S = 60


class IapKeys:
    """Google's IAP public keys (key id -> PEM), fetched over HTTPS and kept for an hour."""

    def __init__(self, url: str = IAP_KEYS_URL, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout
        self._keys: dict[str, str] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def fetch(self) -> dict[str, str]:
        import google.auth.transport.requests

        response = google.auth.transport.requests.Request()(self.url, method="GET", timeout=self.timeout)
        if response.status != 200:
            raise OSError(f"{self.url} answered {response.status}")
        return json.loads(response.data)

    def get(self, key_id: str | None) -> dict[str, str]:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age > KEYS_MAX_AGE_S or (key_id not in self._keys and age > KEYS_MIN_REREAD_S)
            if stale:
                self._keys = self.fetch()
                self._fetched_at = time.monotonic()
            return self._keys


class IapVerifier:
    def __init__(self, audience: str, keys):
        self.audience = audience
        self.keys = keys  # an IapKeys, or anything with get(key_id) -> {key id: PEM}

    def verify(self, assertion: str | None) -> dict:
        """The assertion's claims, or ApiError 401 (none sent) / 403 (not valid) / 503 (no keys)."""
        from google.auth import exceptions, jwt

        if not assertion:
            raise ApiError(401, f"this service is reached through Identity-Aware Proxy: no {ASSERTION_HEADER} header")
        try:
            key_id = jwt.decode_header(assertion).get("kid")
        except (ValueError, TypeError, exceptions.GoogleAuthError):
            raise ApiError(403, "the IAP assertion is not a JWT") from None
        try:
            keys = self.keys.get(key_id)
        except (OSError, ValueError) as error:
            log.warning("cannot read IAP's public keys: %s", error)
            raise ApiError(503, "the IAP assertion cannot be checked right now; try again shortly") from None
        try:
            claims = jwt.decode(assertion, certs=keys, audience=self.audience)
        except (ValueError, exceptions.GoogleAuthError) as error:
            raise ApiError(403, _reason(str(error))) from None
        if claims.get("iss") != IAP_ISSUER:
            raise ApiError(403, "the IAP assertion was not issued by IAP")
        return claims


def _reason(message: str) -> str:
    """google-auth's message, in the API's words (it would quote the expected audience)."""
    lowered = message.lower()
    if "expired" in lowered:
        return "the IAP assertion has expired"
    if "too early" in lowered:
        return "the IAP assertion is not valid yet"
    if "audience" in lowered:
        return "the IAP assertion is for another service"
    return "the IAP assertion's signature does not verify against IAP's keys"


def install_closed(app: Flask) -> None:
    """IAP is required but its audience is not configured yet: refuse all but the health checks
    (the load balancer needs those), rather than serve without checking."""
    log.warning("IAP_REQUIRED is set but IAP_AUDIENCE is empty: every request but the health checks is refused")

    @app.before_request
    def refuse_until_configured():
        if request.path in UNCHECKED_PATHS:
            return None
        raise ApiError(503, "this service requires IAP, and its IAP audience is not configured yet")


def install(app: Flask, verifier: IapVerifier) -> None:
    @app.before_request
    def require_iap():
        if request.path in UNCHECKED_PATHS:
            return None
        verifier.verify(request.headers.get(ASSERTION_HEADER))
        return None
