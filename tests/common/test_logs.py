"""mnist_common.logs: plain text by default, JSON lines that carry severity with LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from mnist_common.logs import LogFormatError, configure, log_format


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log(environ, restore_root_logger, emit) -> str:
    stream = io.StringIO()
    configure("demo", "INFO", environ=environ, stream=stream)
    emit(logging.getLogger("demo.part"))
    return stream.getvalue()


def test_json_lines_parse_and_carry_severity_and_fields(restore_root_logger):
    def emit(log):
        log.info("serving version %d", 3, extra={"fields": {"version": 3, "severity": "overwritten?"}})
        log.warning("slow")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")

    lines = _log({"LOG_FORMAT": "json"}, restore_root_logger, emit).splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["severity"] for e in entries] == ["INFO", "WARNING", "ERROR"]
    assert entries[0]["message"] == "serving version 3" and entries[0]["version"] == 3
    assert all(e["service"] == "demo" and e["logger"] == "demo.part" and e["time"].endswith("+00:00") for e in entries)
    assert "RuntimeError: boom" in entries[2]["message"]


def test_text_by_default(restore_root_logger):
    text = _log({}, restore_root_logger, lambda log: log.info("hello"))
    assert " INFO demo.part: hello" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_unknown_format_is_named():
    with pytest.raises(LogFormatError, match="LOG_FORMAT='xml'"):
        log_format({"LOG_FORMAT": "xml"})


def test_the_default_handler_follows_sys_stderr_when_it_is_replaced(monkeypatch):
    """Set up while one stderr is current, logging later to another: nothing is written into the
    first (a closed capture there would print 'Logging error' tracebacks)."""
    from mnist_common import logs

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        logs.configure("test-service")
        monkeypatch.setattr(sys, "stderr", second)
        first.close()
        logging.getLogger("mnist.test").warning("after the swap")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "after the swap" in second.getvalue()
