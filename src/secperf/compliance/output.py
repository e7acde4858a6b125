"""A report's data in each format: JSON (data and hash), HTML and PDF."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, get_args

from secperf.compliance.digest import data_sha256
from secperf.compliance.render_html import render_html
from secperf.compliance.render_pdf import render_pdf
from secperf.timefmt import file_stamp

ReportFormat = Literal["json", "html", "pdf"]
FORMATS: tuple[str, ...] = get_args(ReportFormat)
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


def parse_format(value: str) -> ReportFormat:
    """``value`` as a report format; ValueError naming the choices."""
    lowered = value.strip().lower()
    for known in get_args(ReportFormat):
        if lowered == known:
            chosen: ReportFormat = known
            return chosen
    raise ValueError(f"unknown report format {value!r}; expected one of {', '.join(FORMATS)}")


def json_document(data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON report: the data and the SHA-256 of its canonical JSON."""
    return {"data": data, "sha256": data_sha256(data)}


def render(data: Mapping[str, Any], fmt: ReportFormat) -> bytes:
    """The report in ``fmt``; PdfUnavailable (render_pdf) when PDF cannot be made here."""
    sha256 = data_sha256(data)
    if fmt == "json":
        return (json.dumps(json_document(data), indent=2, ensure_ascii=False) + "\n").encode()
    html_text = render_html(data, sha256)
    if fmt == "html":
        return html_text.encode("utf-8")
    return render_pdf(html_text)


def file_name(data: Mapping[str, Any], fmt: ReportFormat) -> str:
    """A download name such as ``secperf-report-20260101-20260331.html``."""
    period = data["period"]
    since = file_stamp(period["since_ms"])[:8]
    until = file_stamp(period["until_ms"])[:8]
    return f"secperf-report-{since}-{until}.{fmt}"
