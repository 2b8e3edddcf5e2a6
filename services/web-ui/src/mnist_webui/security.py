"""Response headers: the page may load nothing that the app does not serve itself, and nothing
dynamic is kept by a cache."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import Flask

# Scripts, styles and fonts only from this origin; images also as data: URIs (digits travel as
# data URIs); fetch() only back to this origin. No inline script or style anywhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

# Every answer is made for one request (a random digit, a prediction, a status): caches keep
# none of it. Static files keep what Flask gives them (no-cache with an ETag: revalidated).
NO_STORE = "no-store"

# What the server writes itself, before or instead of the app (400, 408, 413, 414, 431).
ERROR_HEADERS = [
    *HEADERS.items(),
    ("Content-Type", "application/json"),
    ("Cache-Control", NO_STORE),
]


# What every answer gets unless the view set its own: (lower-cased name, name, value).
_DEFAULTS = tuple((name.lower(), name, value) for name, value in [*HEADERS.items(), ("Cache-Control", NO_STORE)])


def install(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response):
        # One pass over the answer's headers: a setdefault() per header scanned them all each
        # time, about a tenth of the app's CPU per prediction (cProfile of the predict path with
        # a fake model server).
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        missing = [(name, value) for lower, name, value in _DEFAULTS if lower not in present]
        if missing:
            headers.extend(missing)
        if "location" in present:
            headers["Location"] = same_origin_location(headers["Location"])
        return response


def same_origin_location(location: str) -> str:
    """The app only ever redirects within itself (werkzeug merging "//" in a path, for one), and
    werkzeug builds those from the request's Host header: keep the path, drop the origin."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    return urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query, parts.fragment))
