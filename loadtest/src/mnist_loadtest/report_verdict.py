"""The objectives' verdict written into locust's HTML report, so the report a run leaves behind
says on its first screen whether the run met loadtest/slo.yaml (before, only the terminal did).

The block goes right after <body>, before locust's own page; a second check of the same report
replaces it. The file is rewritten through a temporary file and a rename, so a reader never
sees half of it.
"""

from __future__ import annotations

import html
import os
import re
import tempfile

MARK_START = "<!-- mnist-loadtest verdict -->"
MARK_END = "<!-- /mnist-loadtest verdict -->"


class ReportError(ValueError):
    pass


def verdict_block(passed: bool, report_text: str, slo_file: str) -> str:
    colour = "#1a7f37" if passed else "#cf222e"
    title = "objectives met" if passed else "objectives MISSED"
    return (
        f'{MARK_START}<section id="mnist-slo-verdict" style="font-family:sans-serif;margin:12px;padding:8px 12px;'
        f'border:2px solid {colour};border-radius:6px">'
        f'<h2 style="color:{colour};margin:4px 0">{html.escape(title)}</h2>'
        f"<div>service-level objectives of {html.escape(slo_file)}</div>"
        f'<pre style="margin:6px 0">{html.escape(report_text)}</pre></section>{MARK_END}'
    )


def add_verdict(report_path: str, block: str) -> None:
    try:
        with open(report_path, encoding="utf-8") as handle:
            page = handle.read()
    except OSError as error:
        raise ReportError(f"{report_path}: cannot read the HTML report: {error.strerror or error}") from None
    page = re.sub(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), "", page, flags=re.DOTALL)
    body = re.search(r"<body[^>]*>", page, re.IGNORECASE)
    if body is None:
        raise ReportError(f"{report_path}: not an HTML report (no <body>)")
    page = page[: body.end()] + block + page[body.end() :]
    folder = os.path.dirname(os.path.abspath(report_path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".html")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(temporary, report_path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
