"""One log format for every service's log records.

Plain text in a terminal (`2026-12-02 18:00:00,123 INFO tfserving_standin.server: serving ...`);
with LOG_FORMAT=json, which the cluster's manifests set, one JSON object per line that Cloud
Logging parses: `severity`, `message`, `time`, the logger and the service, and any fields a call
adds with `log.info("...", extra={"fields": {"version": 3}})`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
# What each record holds whatever it says; extra fields never overwrite these.
CORE_KEYS = ("time", "severity", "message", "logger", "service")


class LogFormatError(ValueError):
    pass


def log_format(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    value = (environ.get("LOG_FORMAT") or "text").strip().lower()
    if value not in FORMATS:
        raise LogFormatError(f"LOG_FORMAT={value!r} must be 'text' or 'json'")
    return value


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON, with the keys Cloud Logging reads (severity, message, time)."""

    def __init__(self, service: str = ""):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)  # Error Reporting reads the trace here
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "severity": record.levelname,
            "message": message,
            "logger": record.name,
            "service": self.service,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update({key: value for key, value in fields.items() if key not in CORE_KEYS})
        return json.dumps(entry, default=str)


def formatter(service: str, environ: Mapping[str, str] | None = None) -> logging.Formatter:
    if log_format(environ) == "json":
        return JsonFormatter(service)
    return logging.Formatter(TEXT_FORMAT)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes, not to the stream it was at set-up:
    a caller that swaps stderr (a test's capture, a daemonising wrapper) never leaves the logger
    writing into a closed file."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property always answers sys.stderr
        pass


def configure(
    service: str, level: str | int = "INFO", environ: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> None:
    """The root logger writes `service`'s records to stream (stderr) in the format LOG_FORMAT names."""
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.setFormatter(formatter(service, environ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
